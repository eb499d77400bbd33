"""Task config schemas of the Megalodon plugin (plain dataclasses: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom.config import option
from paperloom.schemas import OptimConfig, TextDataConfig, TrainerConfig


def _paper_optim() -> OptimConfig:
    # paper §4.1 (7B): AdamW, betas (0.9, 0.95), cosine schedule, weight decay 0.1, clip 1.0
    return OptimConfig(lr=3.5e-4, min_lr=3.5e-5, warmup_steps=10, beta1=0.9, beta2=0.95, weight_decay=0.1)


@dataclass
class PretrainConfig:
    """Pre-train a Megalodon (or any causal-LM component) on text with Lightning; chunked long sequences."""

    model: str = option("megalodon:small", help="causal-LM component (plugin:name) or a local HF checkpoint folder",
                        component="model", contract="causal-lm")
    model_args: dict[str, Any] = option({}, help="model builder overrides: hidden_size, num_hidden_layers, "
                                                 "chunk_size, cema_ndim, norm_num_groups, kernel_backend, ...")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text data (block_size = training context)")
    optim: OptimConfig = option(default_factory=_paper_optim, help="AdamW + warmup/cosine")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")
    token_budget: int = option(0, help="train on this many tokens (sets trainer.max_steps); 0 = use max_steps")
    eval_lengths: list[int] = option([], help="after training, also report val loss at these context lengths")
    export: bool = option(True, help="save the trained model + tokenizer as an HF folder in model/")


@dataclass
class EvaluateConfig:
    """Validation loss and perplexity of a causal LM by context length."""

    model: str = option("megalodon:tiny", help="a local HF checkpoint folder (or a component, randomly initialised)",
                        component="model", contract="causal-lm")
    data: TextDataConfig = option(default_factory=TextDataConfig,
                                  help="text data; the tokenizer defaults to the model folder's")
    context_lengths: list[int] = option([64, 128, 256], help="context lengths to evaluate (tokens per sequence)")
    batch_size: int = option(4, help="sequences per forward pass")
    max_tokens: int = option(65536, help="cap on evaluated tokens per context length (0 = all)")


@dataclass
class DemoConfig:
    """Cross-chunk recall: Megalodon vs the same model with CEMA disabled."""

    n_chunks: int = option(5, help="sequence length in chunks; the marker ends a random chunk k in "
                                   "[first_chunk, n_chunks-3], the answer starts chunk k+1, the query ends the last")
    first_chunk: int = option(1, help="earliest chunk the marker may end (the norm-statistics leak is largest early)")
    chunk_size: int = option(8, help="attention chunk size (tokens)")
    n_values: int = option(8, help="number of possible values (chance accuracy = 1 / n_values)")
    hidden_size: int = option(64, help="model width")
    num_hidden_layers: int = option(2, help="blocks")
    cema_ndim: int = option(16, help="CEMA states per feature (N)")
    norm_num_groups: int = option(4, help="timestep-norm groups")
    steps: int = option(800, help="training steps per model")
    batch_size: int = option(32, help="sequences per step")
    lr: float = option(5e-3, help="AdamW learning rate")
    eval_size: int = option(512, help="held-out sequences for the accuracy")
    eval_every: int = option(50, help="log held-out accuracy every N steps")
