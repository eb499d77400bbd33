"""The core's own plugin, registered through the same hooks as any other.

It offers the generic causal-LM pieces every language-model paper plugin composes with.
"""

from __future__ import annotations

from . import hookimpl
from .interfaces import Check, Component, PluginInfo, Requirements, Task

LM = "paperloom.lm_components"


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="Built-in causal-LM components (GPT-2, Llama, any local HF checkpoint), text data and LM training",
        requires=Requirements(packages=("torch>=2.4", "lightning>=2.4", "transformers>=4.45", "tokenizers>=0.19")),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        Component(
            "gpt2",
            "model",
            f"{LM}:build_gpt2",
            "GPT-2 causal LM from config values (random init)",
            produces=("causal-lm",),
        ),
        Component(
            "llama",
            "model",
            f"{LM}:build_llama",
            "Llama causal LM from config values (random init)",
            produces=("causal-lm",),
        ),
        Component(
            "hf-causal-lm",
            "model",
            f"{LM}:load_causal_lm",
            "any Hugging Face causal LM from a local checkpoint folder (path=...)",
            produces=("causal-lm",),
        ),
        Component(
            "text",
            "dataset",
            f"{LM}:build_text",
            "packed token blocks from the embedded corpus or local text files",
            produces=("token-blocks",),
        ),
        Component(
            "lm-eval",
            "evaluator",
            f"{LM}:build_lm_evaluator",
            "validation loss and perplexity",
            consumes=("causal-lm", "token-blocks"),
        ),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    smoke = {
        "trainer.max_steps": 4,
        "trainer.val_every": 2,
        "trainer.checkpoint_every": 2,
        "data.max_chars": 20000,
        "data.vocab_size": 300,
        "data.block_size": 32,
        "model_args": {"n_layer": 1, "n_embd": 32, "n_head": 2},
    }
    return [
        Task(
            "train-lm",
            "paperloom.lm_tasks:train_lm",
            "paperloom.lm_tasks_config:TrainLMConfig",
            config="configs/train-lm.yaml",
            summary="pre-train any causal-LM component on text (Lightning)",
            smoke=smoke,
        ),
        Task(
            "demo",
            "paperloom.lm_tasks:train_lm",
            "paperloom.lm_tasks_config:TrainLMConfig",
            config="configs/demo.yaml",
            summary="train a tiny GPT-2 on the embedded corpus: val loss falls",
            smoke=smoke,
            verify=(Check("val_loss", "<", other="init_val_loss", summary="training lowers val loss"),),
        ),
    ]
