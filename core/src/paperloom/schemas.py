"""Config sections shared by many tasks: the Lightning trainer and AdamW with warmup + cosine decay.

Plain dataclasses: importing this loads no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import option


@dataclass
class TrainerConfig:
    """Lightning Trainer settings; any strategy Lightning knows scales a task out unchanged."""

    max_steps: int = option(100, help="optimizer steps to train for")
    accelerator: str = option("auto", help="cpu, gpu, auto (Lightning accelerator)")
    devices: int = option(1, help="number of devices / processes")
    strategy: str = option("auto", help="Lightning strategy: auto, ddp, ddp_spawn, fsdp, ...")
    precision: str = option("32-true", help="Lightning precision: 32-true, bf16-mixed, 16-mixed")
    batch_size: int = option(8, help="per-device batch size")
    accumulate_grad_batches: int = option(1, help="gradient accumulation")
    gradient_clip_val: float = option(1.0, help="max gradient norm (0 disables)")
    val_every: int = option(50, help="validate every N optimizer steps")
    log_every: int = option(10, help="log training metrics every N steps")
    checkpoint_every: int = option(50, help="write checkpoints/last.ckpt every N steps (atomically)")
    num_workers: int = option(0, help="DataLoader worker processes")


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `min_lr` (the schedule most LM papers use)."""

    lr: float = option(3e-4, help="peak learning rate")
    min_lr: float = option(3e-5, help="learning rate at the end of the cosine decay")
    warmup_steps: int = option(10, help="linear warmup steps")
    beta1: float = option(0.9, help="AdamW beta1")
    beta2: float = option(0.95, help="AdamW beta2")
    weight_decay: float = option(0.1, help="AdamW weight decay (not applied to norms and biases)")
