"""Declarations of the `lm` library plugin (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl
from paperloom.contracts import CAUSAL_LM, HF_CHECKPOINT, TOKEN_BLOCKS

PKG = "paperloom_lm"
TINY = {"data.max_chars": 20000, "data.vocab_size": 300, "data.block_size": 32}
TINY_TRAIN = {"trainer.max_steps": 4, "trainer.val_every": 2, "trainer.checkpoint_every": 2, "trainer.log_every": 1,
              "model_args": {"n_layer": 1, "n_embd": 32, "n_head": 2}}


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="the shared causal-LM stack: GPT-2 / Llama / local HF models, text data, one pre-training recipe",
        requires=Requirements(packages=("torch>=2.4", "lightning>=2.4", "transformers>=4.56", "tokenizers>=0.19")),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        Component("gpt2", "model", f"{PKG}.components:build_gpt2", "GPT-2 causal LM from config values (random init)",
                  produces=(CAUSAL_LM,)),
        Component("llama", "model", f"{PKG}.components:build_llama",
                  "Llama causal LM from config values (random init)", produces=(CAUSAL_LM,)),
        Component("hf-causal-lm", "model", f"{PKG}.components:load_causal_lm",
                  "any Hugging Face causal LM from a local checkpoint folder (path=...)", produces=(CAUSAL_LM,),
                  loads_folder=True),
        Component("perplexity", "evaluator", f"{PKG}.components:build_perplexity",
                  "token-weighted validation loss and perplexity", consumes=(CAUSAL_LM, TOKEN_BLOCKS)),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    return [
        Task("pretrain", f"{PKG}.tasks:pretrain", f"{PKG}.config:PretrainConfig",
             summary="pre-train any causal-LM component or folder on text with Lightning (token budget, resumable)",
             smoke={**TINY, **TINY_TRAIN}, artifacts={"model": HF_CHECKPOINT}),
        Task("evaluate", f"{PKG}.tasks:evaluate", f"{PKG}.config:EvaluateConfig",
             summary="val loss / perplexity of a causal LM by context length, plus any evaluator components",
             smoke={**TINY, "model_args": TINY_TRAIN["model_args"], "context_lengths": [16, 32]}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:PretrainConfig",
             summary="pre-train a tiny GPT-2 on the embedded corpus: val loss falls", smoke={**TINY, **TINY_TRAIN},
             verify=(Check("val_loss", "<", other="init_val_loss", summary="training lowers val loss"),)),
    ]
