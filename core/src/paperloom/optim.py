"""AdamW with linear warmup then cosine decay (`schemas.OptimConfig`), for Lightning and plain loops alike."""

from __future__ import annotations

import math
from typing import Any

import torch

from .schemas import OptimConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: norms, biases and 1-d gains are not decayed (GPT-2/nanoGPT practice)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def warmup_cosine(step: int, warmup: int, total: int, lr: float, min_lr: float) -> float:
    """Linear warmup to `lr`, then cosine decay to `min_lr` at `total` steps (returned as a multiplier of lr)."""
    if lr <= 0:
        return 0.0
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return (min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))) / lr


def adamw(model: torch.nn.Module, cfg: OptimConfig, total_steps: int) -> tuple[Any, Any]:
    """(AdamW, LambdaLR stepped once per optimizer step) as `cfg` describes."""
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, cfg.warmup_steps, total_steps, cfg.lr, cfg.min_lr)
    )
    return opt, sched
