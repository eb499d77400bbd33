"""Declarations of the Megalodon plugin (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

PKG = "paperloom_megalodon"
BUILD = f"{PKG}.modeling:build_model"


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="Megalodon LM: complex EMA + timestep norm + chunk-wise normalized attention "
                "(HF causal LM, Triton kernels)",
        paper="Ma et al., Megalodon: Efficient LLM Pretraining and Inference with Unlimited Context Length "
              "(arXiv 2404.08801)",
        url="https://arxiv.org/abs/2404.08801",
        requires=Requirements(packages=("torch>=2.4", "transformers>=4.45", "lightning>=2.4", "tokenizers>=0.19"),
                              extras=("triton>=3.0",), gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    sizes = ("size overrides: hidden_size, num_hidden_layers, chunk_size, cema_ndim, norm_num_groups, use_cema, "
             "kernel_backend")
    return [
        Component("tiny", "model", BUILD, f"test-size Megalodon (D=32, 2 layers, chunk 16); {sizes}",
                  produces=("causal-lm",), defaults={"preset": "tiny"}, hf_model_types=("megalodon",)),
        Component("small", "model", BUILD, f"small Megalodon (D=256, 4 layers, N=16, chunk 2048, 32 groups); {sizes}",
                  produces=("causal-lm",), defaults={"preset": "small"}, hf_model_types=("megalodon",)),
        Component("7b", "model", BUILD, "the paper's 7B Megalodon (32 layers, D=4096, chunk 4096); random init",
                  produces=("causal-lm",), defaults={"preset": "paper_7b"}, hf_model_types=("megalodon",)),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    lm_smoke = {"trainer.max_steps": 3, "trainer.val_every": 2, "trainer.checkpoint_every": 2, "trainer.batch_size": 4,
                "data.max_chars": 20000, "data.vocab_size": 300, "data.block_size": 48, "model": "megalodon:tiny",
                "model_args": {}}
    return [
        Task("pretrain", f"{PKG}.train:pretrain", f"{PKG}.config:PretrainConfig", config="configs/pretrain.yaml",
             summary="pre-train Megalodon (or any causal LM) on text with Lightning: token budget, chunked long "
                     "sequences",
             smoke=lm_smoke,
             verify=(Check("val_loss", "<", other="init_val_loss", summary="training lowers val loss"),)),
        Task("evaluate", f"{PKG}.train:evaluate", f"{PKG}.config:EvaluateConfig", config="configs/evaluate.yaml",
             summary="val loss / perplexity of a checkpoint folder by context length",
             smoke={"data.max_chars": 20000, "data.vocab_size": 300, "context_lengths": [16, 32], "max_tokens": 2048}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig", config="configs/demo.yaml",
             summary="cross-chunk recall: Megalodon solves it, the same model without CEMA stays near chance",
             smoke={"steps": 4, "eval_every": 2, "eval_size": 32, "batch_size": 8},
             verify=(Check("recall_acc", ">", other="no_cema_recall_acc",
                           summary="CEMA carries the answer across chunks; without it recall fails"),
                     Check("recall_gap", ">", value=0.25, summary="a large gap, not noise"),
                     Check("recall_acc", ">", value=0.5, summary="Megalodon solves the task (chance 1/8)"))),
    ]
