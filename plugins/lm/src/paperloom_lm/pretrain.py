"""The one causal-LM pre-training recipe (`lm:pretrain`, `megalodon:pretrain`, `inheritune:pretrain`, the
Inheritune demo's stages): Lightning, AdamW + warmup/cosine, a token budget, `--resume` continues a killed
run and any Lightning strategy (ddp, fsdp, ...) scales it out."""

from __future__ import annotations

import math
from typing import Any

from paperloom.schemas import OptimConfig, TrainerConfig
from paperloom.training import fit, make_trainer

from .causal_lm import CausalLMModule, evaluate_lm, loaders
from .data import Blocks


def steps_for_budget(tokens: int, batch_size: int, block_size: int, accumulate: int = 1, devices: int = 1) -> int:
    """Optimizer steps that consume `tokens` training tokens (at least 1)."""
    per_step = batch_size * block_size * max(1, accumulate) * max(1, devices)
    return max(1, math.ceil(tokens / per_step))


def tokens_per_step(t: TrainerConfig, block_size: int) -> int:
    return t.batch_size * block_size * max(1, t.accumulate_grad_batches) * max(1, t.devices)


def pretrain(model: Any, train: Blocks, val: Blocks, optim: OptimConfig, trainer_cfg: TrainerConfig, ctx: Any,
             token_budget: int = 0) -> dict[str, Any]:
    """Train `model` on `train` blocks; returns init_val_loss, val_loss, val_ppl, steps, tokens and
    ``is_global_zero`` (False in the extra processes of a multi-process strategy, which must write nothing).
    A `token_budget` > 0 sets the number of steps (trainer_cfg.max_steps is updated in place)."""
    t = trainer_cfg
    block = train.rows.shape[1]
    if token_budget:
        t.max_steps = steps_for_budget(token_budget, t.batch_size, block, t.accumulate_grad_batches, t.devices)
        ctx.log.info(f"token budget {token_budget:,} -> {t.max_steps} steps of {tokens_per_step(t, block):,} tokens")
    init = evaluate_lm(model, val, t.batch_size)
    ctx.log_metrics({"val_loss": init["val_loss"]}, step=0)
    model.train()  # folders load in eval mode: train with the dropout the config asks for
    trainer = make_trainer(ctx, t)
    train_dl, val_dl = loaders(train, val, t.batch_size, ctx.seed, t.num_workers)
    fit(ctx, trainer, CausalLMModule(model, optim, t.max_steps), train_dl, val_dl)
    model.cpu()
    final = evaluate_lm(model, val, t.batch_size)
    return {"init_val_loss": init["val_loss"], **final, "steps": trainer.global_step,
            "tokens": trainer.global_step * tokens_per_step(t, block), "is_global_zero": trainer.is_global_zero}
