"""Config sections shared by many tasks: the Lightning trainer and AdamW with warmup + cosine decay.

Plain dataclasses: importing this loads no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import option

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
PRECISIONS = ("32-true", "32", "64-true", "64", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true",
              "transformer-engine")


@dataclass
class TrainerConfig:
    """Lightning Trainer settings; any strategy Lightning knows scales a task out unchanged."""

    max_steps: int = option(100, min=1, help="optimizer steps to train for")
    accelerator: str = option("auto", choices=ACCELERATORS, help="Lightning accelerator")
    devices: int = option(1, min=1, help="number of devices / processes per node")
    num_nodes: int = option(1, min=1, help="number of machines (Lightning detects SLURM / torchrun environments)")
    strategy: str = option("auto", help="Lightning strategy: auto, ddp, ddp_spawn, fsdp, ...")
    precision: str = option("32-true", choices=PRECISIONS, help="Lightning precision")
    batch_size: int = option(8, min=1, help="per-device batch size")
    accumulate_grad_batches: int = option(1, min=1, help="gradient accumulation")
    gradient_clip_val: float = option(1.0, min=0, help="max gradient norm (0 disables)")
    val_every: int = option(50, min=1, help="validate every N optimizer steps")
    log_every: int = option(10, min=1, help="log training metrics every N steps")
    checkpoint_every: int = option(50, min=1, help="write checkpoints/last.ckpt every N steps (atomically)")
    num_workers: int = option(0, min=0, help="DataLoader worker processes")


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `min_lr` (the schedule most LM papers use)."""

    lr: float = option(3e-4, min=0, help="peak learning rate")
    min_lr: float = option(3e-5, min=0, help="learning rate at the end of the cosine decay")
    warmup_steps: int = option(10, min=0, help="linear warmup steps")
    beta1: float = option(0.9, min=0, max=0.999999, help="AdamW beta1")
    beta2: float = option(0.95, min=0, max=0.999999, help="AdamW beta2")
    weight_decay: float = option(0.1, min=0, help="AdamW weight decay (not applied to norms and biases)")
