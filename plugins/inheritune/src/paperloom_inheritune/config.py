"""Typed config schemas of the Inheritune tasks (cheap to import: no torch).

`configs/*.yaml` are instances of these; `configs/paper.yaml` holds the paper's values with
their source quoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from paperloom.config import option
from paperloom.schemas import OptimConfig, TextDataConfig, TrainerConfig


@dataclass
class InheritSpec:
    """What the student takes from the reference (Inheritune, Algorithm 1: the first k blocks + the LM head)."""

    k: int = option(0, help="blocks the student keeps: reference blocks 0..k-1 (0 = half, the paper's choice)")
    blocks: list[int] = option([], help="explicit reference blocks to copy, in order (overrides k); [] = first k")
    copy_head: bool = option(True, help="copy the LM head; with tied embeddings (GPT-2) it is the token embeddings")
    copy_embeddings: bool = option(True, help="copy the token embeddings (untied models such as Llama)")
    copy_final_norm: bool = option(False, help="copy the final norm (ln_f / model.norm); reference code re-inits it")
    copy_position_embeddings: bool = option(False, help="copy learned position embeddings (GPT-2 wpe); re-initialised "
                                                        "in the reference code")
    copy_other: bool = option(False, help="copy any other tensor outside the blocks (model-specific globals)")
    trust_remote_code: bool = option(False, help="allow checkpoint folders whose config.json names custom code")


def _model_field(default: str, what: str) -> Any:
    return option(default, component="model", contract="causal-lm",
                  help=f"{what}: a local HF checkpoint folder or a causal-lm component (plugin:name)")


@dataclass
class InheritConfig:
    reference: str = _model_field("core:gpt2", "the reference (large) LM")
    reference_args: dict[str, Any] = option({}, help="builder arguments when `reference` is a component (sizes)")
    inherit: InheritSpec = option(default_factory=InheritSpec, help="what the student inherits")
    out: str = option("", help="folder to save the student in (default: <run>/student); must be empty or absent")


@dataclass
class TrainConfig:
    model: str = _model_field("core:gpt2", "the model to pre-train (e.g. the student folder inheritune:inherit saved)")
    model_args: dict[str, Any] = option({}, help="builder arguments when `model` is a component (sizes)")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text (data.train_fraction is a data budget)")
    budget_tokens: int = option(0, help="train on only the first N tokens of the training split (0 = train_fraction)")
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW + warmup/cosine (paper: 2e-4 -> 1e-5)")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")
    export: bool = option(True, help="save the trained model (safetensors) and tokenizer in <run>/model")


@dataclass
class EvaluateConfig:
    model: str = _model_field("core:gpt2", "the model to evaluate")
    model_args: dict[str, Any] = option({}, help="builder arguments when `model` is a component (sizes)")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="held-out text")
    split: Literal["val", "all"] = option("val", help="'val' = the held-out split `train` used (same seed); "
                                                      "'all' = every block of data.source")
    batch_size: int = option(16, help="evaluation batch size")
    mc_file: str = option("", help="optional JSONL of multiple-choice rows {question, choices, answer}")
    mc_format: Literal["continuation", "letters"] = option(
        "continuation", help="'continuation': score each choice's text after the question; "
                             "'letters': MMLU-style ' A'/' B' after a prompt listing the choices")
    mc_limit: int = option(0, help="score only the first N questions (0 = all)")


@dataclass
class DemoConfig:
    model: str = _model_field("core:gpt2", "the reference architecture (trained from scratch by the demo)")
    model_args: dict[str, Any] = option({"n_layer": 8, "n_embd": 64, "n_head": 2, "n_positions": 64},
                                        help="reference builder arguments (8 blocks)")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text: the embedded corpus by default")
    inherit: InheritSpec = option(default_factory=InheritSpec, help="what the student inherits (k=4 of 8)")
    subset_fraction: float = option(0.1, help="fraction of the reference's training blocks the students see "
                                              "(the paper: 0.1%)")
    seeds: list[int] = option([0, 1, 2], help="student seeds (re-initialised tensors, random student, data order)")
    optim: OptimConfig = option(default_factory=OptimConfig, help="optimizer of the reference")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="trainer of the reference")
    student_optim: OptimConfig = option(default_factory=OptimConfig, help="optimizer of both students (same for both)")
    student_trainer: TrainerConfig = option(default_factory=TrainerConfig, help="trainer of both students (same steps)")
