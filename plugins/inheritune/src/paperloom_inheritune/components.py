"""Builders of the plugin's components (``builder(ctx, **kwargs)``), so other tasks and plugins compose with
Inheritune by name: ``core run lm:pretrain --set model=inheritune:student
--set model_args='{reference: /ckpt/gpt2-large, k: 18}' --set data.tokenizer=/ckpt/gpt2-large``."""

from __future__ import annotations

from typing import Any

from paperloom import UserError

from .config import InheritSpec


def build_student(ctx: Any, reference: str = "", random_init: bool = False, seed: int | None = None,
                  vocab_size: int | None = None, **spec: Any) -> Any:
    """The k-block student of checkpoint folder `reference` (Algorithm 1); `spec` holds InheritSpec fields
    (k, blocks, copy_*). `random_init=True` gives the paper's baseline: the same architecture, every tensor
    at its random init. Re-initialised tensors are drawn with `seed` (default: the run's --seed)."""
    from .inherit import inherit_from_folder, random_student

    if not reference:
        raise UserError("inheritune:student needs reference = a checkpoint folder to inherit from "
                        "(model_args={reference: <folder>, k: ...})")
    known = InheritSpec.__dataclass_fields__
    unknown = sorted(set(spec) - set(known))
    if unknown:
        raise UserError(f"inheritune:student: unknown argument {unknown[0]!r}; known: reference, random_init, seed, "
                        + ", ".join(known))
    seed = ctx.seed if seed is None else seed
    if random_init:
        student = random_student(reference, InheritSpec(**spec), seed)
    else:
        student, _, _ = inherit_from_folder(reference, InheritSpec(**spec), seed)
    emb = student.get_input_embeddings().num_embeddings
    if vocab_size is not None and emb < vocab_size:
        raise UserError(f"{reference}: the model has {emb} token embeddings but the tokenizer has {vocab_size}; "
                        f"use the tokenizer saved with the reference (data.tokenizer={reference})")
    return student


def build_mc_eval(ctx: Any, mc_file: str = "", tokenizer: str = "", mc_format: str = "continuation",
                  limit: int = 0) -> Any:
    """`evaluate(model, data, ctx) -> {mc_acc, mc_acc_norm, mc_questions}` on the JSONL file `mc_file`. The
    tokenizer is the folder `tokenizer`, else the one that made the evaluated blocks (`data.tokenizer`)."""
    from paperloom_lm.data import load_tokenizer

    from .mc_eval import FORMATS, read_mc, score_mc

    if not mc_file:
        raise UserError("inheritune:mc-eval needs mc_file = a JSONL file of {question, choices, answer} rows "
                        "(evaluator_args='{inheritune:mc-eval: {mc_file: mmlu.jsonl}}')")
    if mc_format not in FORMATS:
        raise UserError(f"inheritune:mc-eval: mc_format = {mc_format!r}; expected one of {', '.join(FORMATS)}")
    rows = read_mc(mc_file, limit)
    own = load_tokenizer(tokenizer) if tokenizer else None

    def evaluate(model: Any, data: Any, ctx: Any) -> dict[str, float]:
        tok = own if own is not None else getattr(data, "tokenizer", None)
        if tok is None:
            raise UserError("inheritune:mc-eval: no tokenizer: pass tokenizer=<folder> in its evaluator_args")
        return score_mc(model, tok, rows, mc_format, ctx.device)

    return evaluate
