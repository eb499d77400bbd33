"""Builders of the plugin's components, so other tasks and plugins compose with Inheritune by name:
`--set model=inheritune:student --set model_args='{reference: /path/to/gpt2-large, k: 18}'`."""

from __future__ import annotations

from typing import Any

from paperloom import UserError

from .config import InheritSpec


def build_student(reference: str = "", vocab_size: int | None = None, seed: int = 0, **spec: Any) -> Any:
    """The student of checkpoint folder `reference`; `spec` holds InheritSpec fields (k, blocks, copy_*)."""
    from .inherit import inherit_from_folder

    if not reference:
        raise UserError("inheritune:student needs model_args.reference = a checkpoint folder to inherit from")
    unknown = sorted(set(spec) - set(InheritSpec.__dataclass_fields__))
    if unknown:
        raise UserError(f"inheritune:student: unknown argument {unknown[0]!r}; known: reference, seed, "
                        + ", ".join(InheritSpec.__dataclass_fields__))
    student, _, _ = inherit_from_folder(reference, InheritSpec(**spec), seed)
    emb = student.get_input_embeddings().num_embeddings
    if vocab_size is not None and emb < vocab_size:
        raise UserError(f"{reference}: the model has {emb} token embeddings but the tokenizer has {vocab_size}; "
                        f"use the tokenizer saved with the reference (data.tokenizer={reference})")
    return student


def build_trainer(**overrides: Any) -> Any:
    """`fit(model, train_blocks, val_blocks, ctx) -> metrics` with OptimConfig/TrainerConfig fields as overrides."""
    from paperloom.schemas import OptimConfig, TrainerConfig

    from .train import pretrain

    optim_keys, trainer_keys = set(OptimConfig.__dataclass_fields__), set(TrainerConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - optim_keys - trainer_keys)
    if unknown:
        raise UserError(f"inheritune:pretrain: unknown argument {unknown[0]!r}; use OptimConfig/TrainerConfig fields")
    # arXiv 2404.08634, GPT-2 runs (GPT2-experiments/train_iniheritune.py)
    paper = {"lr": 2e-4, "min_lr": 1e-5, "beta1": 0.9, "beta2": 0.95, "weight_decay": 0.1}
    optim = OptimConfig(**{**paper, **{k: v for k, v in overrides.items() if k in optim_keys}})
    trainer = TrainerConfig(**{"gradient_clip_val": 1.0, **{k: v for k, v in overrides.items() if k in trainer_keys}})

    def fit(model: Any, train: Any, val: Any, ctx: Any) -> dict:
        result = pretrain(model, train, val, optim, trainer, ctx, getattr(ctx, "seed", 0))
        result.pop("is_global_zero")
        return result

    return fit


def build_mc_evaluator(mc_file: str = "", tokenizer: str = "", mc_format: str = "continuation", limit: int = 0) -> Any:
    """`evaluate(model, data=None, ctx=None) -> {mc_acc, mc_acc_norm}` for the JSONL file `mc_file`."""
    from paperloom.lm import load_tokenizer

    from .evaluate import read_mc, score_mc

    if not mc_file or not tokenizer:
        raise UserError("inheritune:mc-eval needs mc_file (JSONL of {question, choices, answer}) and tokenizer "
                        "(a folder)")
    rows, tok = read_mc(mc_file, limit), load_tokenizer(tokenizer)

    def evaluate(model: Any, data: Any = None, ctx: Any = None) -> dict:
        return score_mc(model, tok, rows, mc_format, getattr(ctx, "device", "cpu"))

    return evaluate
