"""Task schemas of the `lm` plugin (plain dataclasses: no torch import). Other LM plugins reuse them:
`PretrainConfig` is the schema of every `pretrain` task, `TextDataConfig` of every text section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from paperloom.config import option
from paperloom.contracts import CAUSAL_LM
from paperloom.schemas import OptimConfig, TrainerConfig


@dataclass
class TextDataConfig:
    """Text for causal-LM tasks: the embedded corpus or local files, a locally trained tokenizer."""

    source: str = option(
        "embedded",
        help="'embedded' (Python stdlib docstrings) or a path: .txt file, folder of .txt/.md, .jsonl with 'text'",
    )
    tokenizer: str = option("", help="tokenizer folder (from_pretrained); empty: the model folder's, else a "
                                     "byte-level BPE trained on the data")
    vocab_size: int = option(2048, min=1, help="vocab size when training a tokenizer")
    block_size: int = option(128, min=1, help="tokens per training sequence")
    val_fraction: float = option(0.1, min=0, max=1, help="fraction of blocks held out for validation")
    train_fraction: float = option(1.0, min=0, max=1, help="data budget: the fraction of the training blocks used")
    train_tokens: int = option(0, min=0,
                               help="data budget in tokens: only the first N tokens of the (shuffled) training "
                                       "split are used, overriding train_fraction (0 = off)")
    max_chars: int = option(0, min=0, help="cap on corpus characters read (0 = all)")


def model_field(default: str, what: str) -> Any:
    """A config field naming a causal-LM component or a local HF checkpoint folder."""
    return option(default, component="model", contract=CAUSAL_LM,
                  help=f"{what}: a causal-lm component (plugin:name) or a local HF checkpoint folder")


@dataclass
class PretrainConfig:
    """Pre-train a causal LM on text with Lightning: AdamW + warmup/cosine, a token budget, resumable."""

    model: str = model_field("lm:gpt2", "the model to pre-train")
    model_args: dict[str, Any] = option({}, help="keyword arguments for the model builder (sizes)")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text data (block_size = training context)")
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW + warmup/cosine")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")
    token_budget: int = option(0, min=0, help="compute budget: train on this many tokens (sets trainer.max_steps); "
                                       "0 = trainer.max_steps")
    eval_lengths: list[int] = option([], help="after training, also report val loss at these context lengths")
    export: bool = option(True, help="save the trained model + tokenizer as an HF folder (safetensors) in model/")


@dataclass
class EvaluateConfig:
    """Validation loss and perplexity of a causal LM by context length, plus any evaluator components."""

    model: str = model_field("lm:gpt2", "the model to evaluate (a folder, or a randomly initialised component)")
    model_args: dict[str, Any] = option({}, help="keyword arguments for the model builder (sizes)")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text; the tokenizer defaults to the folder's")
    split: Literal["val", "tail", "all"] = option(
        "tail", help="'val': the held-out blocks pretrain used (same seed and block_size); 'tail': the last "
                     "data.val_fraction of the token stream, contiguous; 'all': every token of data.source")
    context_lengths: list[int] = option([], help="context lengths evaluated ('tail'/'all'); [] = data.block_size")
    batch_size: int = option(8, min=1, help="sequences per forward pass")
    max_tokens: int = option(0, min=0, help="cap on evaluated tokens per context length (0 = all)")
    evaluators: list[str] = option(["lm:perplexity"], component="evaluator", contract=CAUSAL_LM,
                                   help="evaluator components run on the held-out blocks of each context length "
                                        "(e.g. inheritune:mc-eval)")
    evaluator_args: dict[str, dict] = option({}, help="keyword arguments per evaluator, keyed by its name")
