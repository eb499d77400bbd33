"""Declarations only: importing this module must stay cheap (no torch)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl
from paperloom.contracts import CAUSAL_LM, HF_CHECKPOINT

PKG = "paperloom_fam"
TINY_BASE = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 512}
TINY_FAM = {"fam.block_size": 8, "fam.mem_segments": 1, "fam.fam_len": 2}
TINY_DATA = {"data.max_chars": 20000, "data.vocab_size": 300, "data.block_size": 32}
TINY_TRAINER = {"max_steps": 2, "val_every": 1, "checkpoint_every": 1, "batch_size": 4, "log_every": 1}


@hookimpl
def paperloom_plugin():
    return PluginInfo(
        summary="TransformerFAM: block sliding-window attention + feedback attention memory around any HF decoder "
                "(Llama-family, GPT-2), streaming with constant memory",
        paper="Hwang, Wang, Huo, Sim, Moreno Mengibar: TransformerFAM: Feedback attention is working memory "
              "(arXiv 2404.09173)",
        url="https://arxiv.org/abs/2404.09173",
        requires=Requirements(packages=("paperloom-lm>=0.2,<0.3", "torch>=2.4", "lightning>=2.4",
                                        "transformers>=5.0", "peft>=0.13"), gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components():
    return [
        Component("wrap", "model", f"{PKG}.components:build_wrap",
                  "any causal-lm component or checkpoint folder (base=..., base_args=...) run as BSWA / FAM "
                  "(block_size, mem_segments, fam_len, fam_positions, zero_first_residual); weights unchanged, "
                  "the FAM prompt is the only new parameter", produces=(CAUSAL_LM,), hf_model_types=("fam",)),
    ]


@hookimpl
def paperloom_tasks():
    return [
        Task("convert", f"{PKG}.tasks:convert", f"{PKG}.config:ConvertConfig",
             summary="wrap a checkpoint folder (or a component) as BSWA/FAM and save it as an HF folder",
             smoke={"base_args": TINY_BASE, **TINY_FAM}, artifacts={"model": HF_CHECKPOINT}),
        Task("finetune", f"{PKG}.tasks:finetune", f"{PKG}.config:FinetuneConfig",
             summary="fine-tune a decoder as FAM on long packed text (Lightning; LoRA or full; random state "
                     "passing and position offsets); presets tiny, paper",
             smoke={"base_args": TINY_BASE, **TINY_FAM, **TINY_DATA, "trainer": TINY_TRAINER},
             artifacts={"model": HF_CHECKPOINT}),
        Task("evaluate", f"{PKG}.tasks:evaluate", f"{PKG}.config:EvaluateConfig",
             summary="passkey retrieval accuracy by length and long-context loss by position bucket",
             smoke={"model_args": {"base_args": TINY_BASE, "block_size": 8, "mem_segments": 1, "fam_len": 2},
                    "samples": 8, "lengths": [16, 32], "loss_length": 32, **TINY_DATA}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="toy passkey past BSWA's receptive field: a tiny Llama fine-tuned as BSWA and as FAM, 3 seeds; "
                     "accuracy-vs-length plot",
             smoke={"steps": 3, "seeds": [0], "eval_size": 8, "eval_lengths": [16, 32], "batch_size": 4,
                    "base_args": {**TINY_BASE, "hidden_size": 16}},
             verify=(Check("gap_beyond_lower", ">", value=0.0,
                           summary="FAM accuracy beyond BSWA's receptive field exceeds BSWA's by more than "
                                   "margin_se standard errors over seeds"),
                     Check("fam_acc_beyond", ">", other="chance_plus_margin",
                           summary="FAM is clearly above chance past the receptive field"),
                     Check("bswa_acc_beyond", "<", other="chance_plus_margin",
                           summary="BSWA is at chance past its receptive field"))),
    ]
