"""The `inherit` and `train` tasks, and the Lightning pre-training every Inheritune run shares.

Training is the core's `CausalLMModule` (AdamW, linear warmup, cosine decay to `min_lr`, weight decay
on matrices only) driven by `paperloom.training.make_trainer/fit`, so `--resume` continues a killed run
and any Lightning strategy (ddp, fsdp, ...) scales it out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from paperloom import UserError
from paperloom.lm import Blocks, CausalLMModule, evaluate_lm, loaders, save_hf, text_data
from paperloom.run import looks_like_path
from paperloom.training import fit, make_trainer

from .inherit import count_params, inherit_from_folder, inherit_from_model, save_student


def budget(train: Blocks, tokens: int) -> Blocks:
    """The first `tokens` tokens' worth of training blocks (a token budget; the split is already shuffled)."""
    if tokens <= 0:
        return train
    block = train.rows.shape[1]
    n = max(1, math.ceil(tokens / block))
    if n > len(train):
        raise UserError(f"budget_tokens = {tokens} exceeds the {len(train) * block} training tokens available; "
                        "lower it or add text to data.source")
    return Blocks(train.rows[:n])


def pretrain(model: Any, train: Blocks, val: Blocks, optim: Any, trainer_cfg: Any, ctx: Any, seed: int) -> dict:
    """Train `model` with Lightning; returns {init_val_loss, val_loss, val_ppl, steps, tokens}."""
    init = evaluate_lm(model, val, trainer_cfg.batch_size)
    if hasattr(ctx, "curve"):
        ctx.curve.append({"step": 0, "val_loss": init["val_loss"]})
    model.train()  # from_pretrained returns eval mode; train with the dropout the config asks for
    module = CausalLMModule(model, optim, trainer_cfg.max_steps)
    trainer = make_trainer(ctx, trainer_cfg)
    train_dl, val_dl = loaders(train, val, trainer_cfg.batch_size, seed, trainer_cfg.num_workers)
    fit(ctx, trainer, module, train_dl, val_dl)
    final = evaluate_lm(model, val, trainer_cfg.batch_size)
    tokens = trainer.global_step * trainer_cfg.batch_size * trainer_cfg.accumulate_grad_batches * trainer_cfg.devices
    return {"init_val_loss": init["val_loss"], **final, "steps": trainer.global_step,
            "tokens": tokens * train.rows.shape[1], "is_global_zero": trainer.is_global_zero}


def load_model(ctx: Any, ref: str, vocab_size: int, model_args: dict) -> Any:
    if looks_like_path(ref):
        return ctx.build(ref)
    return ctx.build(ref, vocab_size=vocab_size, **model_args)


def use_folder_tokenizer(data: Any, model: str) -> None:
    """A checkpoint folder brings its own tokenizer: the student must read text the way the reference did."""
    if not data.tokenizer and looks_like_path(model) and (Path(model).expanduser() / "tokenizer.json").is_file():
        data.tokenizer = str(Path(model).expanduser())


# --------------------------------------------------------------------------- tasks


def inherit_task(cfg: Any, ctx: Any) -> dict:
    """Make the k-block student of `cfg.reference` and save it as an HF checkpoint folder."""
    out = Path(cfg.out).expanduser() if cfg.out else ctx.out / "student"
    if looks_like_path(cfg.reference):
        student, plan, stats = inherit_from_folder(cfg.reference, cfg.inherit, ctx.seed)
        ref_params = None
    else:
        reference = ctx.build(cfg.reference, **cfg.reference_args)
        student, plan = inherit_from_model(reference, cfg.inherit, ctx.seed)
        stats, ref_params = {}, count_params(reference)
    save_student(student, out, plan, cfg.reference)
    cats = sorted(set(plan.reinit.values()))
    ctx.log.info(f"student: reference blocks {plan.blocks} of {plan.prefix}; {len(plan.copy)} tensors copied, "
                 f"re-initialised: {', '.join(cats) or 'nothing'} -> {out}")
    metrics = {**plan.summary(), **stats, "student_params": count_params(student)}
    if ref_params is not None:
        metrics["reference_params"] = ref_params
    return metrics


def train_task(cfg: Any, ctx: Any) -> dict:
    """Pre-train a (student) model on a data budget: data.train_fraction of the training split or budget_tokens."""
    use_folder_tokenizer(cfg.data, cfg.model)
    tokenizer, train, val = text_data(cfg.data, ctx.out, ctx.seed)
    train = budget(train, cfg.budget_tokens)
    block = cfg.data.block_size
    ctx.log.info(f"data: {len(train)} train blocks ({len(train) * block} tokens) / {len(val)} val blocks of {block}")
    model = load_model(ctx, cfg.model, len(tokenizer), cfg.model_args)
    emb = model.get_input_embeddings().num_embeddings
    if emb < len(tokenizer):
        raise UserError(f"model {cfg.model} has {emb} token embeddings but the tokenizer has {len(tokenizer)}; use the "
                        "tokenizer saved with the model (data.tokenizer=<its folder>)")
    result = pretrain(model, train, val, cfg.optim, cfg.trainer, ctx, ctx.seed)
    if not result.pop("is_global_zero"):
        return {}
    if cfg.export:
        save_hf(model, ctx.out / "model", tokenizer)
    ctx.log.info(f"val loss {result['init_val_loss']:.3f} -> {result['val_loss']:.3f} (ppl {result['val_ppl']:.1f}) "
                 f"after {result['steps']} steps / {result['tokens']} tokens")
    return {**result, "train_tokens": len(train) * block, "params": count_params(model)}
