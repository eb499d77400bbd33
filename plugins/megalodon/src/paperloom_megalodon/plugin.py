"""Declarations of the Megalodon plugin (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl
from paperloom.contracts import CAUSAL_LM, HF_CHECKPOINT

PKG = "paperloom_megalodon"
SIZES = "overrides: vocab_size and any MegalodonConfig field (hidden_size, chunk_size, use_cema, kernel_backend, ...)"


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="Megalodon LM: complex EMA + timestep norm + chunk-wise normalized attention "
                "(HF causal LM, Triton kernels)",
        paper="Ma et al., Megalodon: Efficient LLM Pretraining and Inference with Unlimited Context Length "
              "(arXiv 2404.08801)",
        url="https://arxiv.org/abs/2404.08801",
        requires=Requirements(packages=("torch>=2.4", "transformers>=5.0", "lightning>=2.4", "tokenizers>=0.19"),
                              extras=("triton>=3.0",), gpu="optional", memory_gb=2),
    )


def _model(name: str, summary: str) -> Component:
    return Component(name, "model", f"{PKG}.components:build_{name}", f"{summary}; {SIZES}", produces=(CAUSAL_LM,),
                     hf_model_types=("megalodon",))


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        _model("tiny", "test-size Megalodon (D=32, 2 layers, N=4, chunk 16, 4 groups)"),
        _model("small", "small Megalodon (D=256, 4 layers, N=16, chunk 2048, 32 groups)"),
        _model("7b", "the paper's 7B Megalodon (32 layers, D=4096, chunk 4096); random init"),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    return [
        Task("pretrain", f"{PKG}.tasks:pretrain", f"{PKG}.config:PretrainConfig",
             summary="pre-train Megalodon (or any causal LM) on text: lm's recipe, token budget, chunked long "
                     "sequences; presets tiny, small, 7b",
             smoke={"trainer.max_steps": 3, "trainer.val_every": 2, "trainer.checkpoint_every": 2,
                    "trainer.batch_size": 4, "data.max_chars": 20000, "data.vocab_size": 300, "data.block_size": 48,
                    "model": "megalodon:tiny", "model_args": {}},
             verify=(Check("val_loss", "<", other="init_val_loss", summary="training lowers val loss"),),
             artifacts={"model": HF_CHECKPOINT}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="cross-chunk recall: Megalodon solves it, the same model without CEMA stays near chance",
             smoke={"steps": 4, "eval_every": 2, "eval_size": 32, "batch_size": 8},
             verify=(Check("recall_acc", ">", other="no_cema_recall_acc",
                           summary="CEMA carries the answer across chunks; without it recall fails"),
                     Check("recall_gap", ">", value=0.25, summary="a large gap, not noise"),
                     Check("recall_acc", ">", value=0.5, summary="Megalodon solves the task (chance 1/8)"))),
    ]
