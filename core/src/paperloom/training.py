"""The Lightning adapter (core extra ``lightning``): a Trainer wired to the run folder.

``make_trainer(ctx, cfg.trainer)`` gives a Trainer whose checkpoints land atomically in
``checkpoints/last.ckpt``, whose logged metrics also go to ``metrics.jsonl``, with Lightning's
CSV (and TensorBoard, when installed) loggers underneath; ``fit`` resumes when ``--resume``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from .optim import adamw
from .schemas import OptimConfig, TrainerConfig


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temp file and rename, so a kill never leaves a torn last.ckpt."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(checkpoint, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        # Lightning checkpoints hold only tensors, numbers and plain containers; refuse pickled code.
        from .checkpoint import load_checkpoint

        return load_checkpoint(path, map_location=map_location or "cpu")


class MetricsToRun(Callback):
    """Mirror Lightning's logged metrics into the run's metrics.jsonl (rank 0 only)."""

    def __init__(self, ctx: Any, every: int) -> None:
        self.ctx, self.every = ctx, max(1, every)

    def _write(self, trainer: L.Trainer, prefix: str | None) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if prefix is None or k.startswith(prefix)}
        if row:
            self.ctx.log_metrics(row, step=trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step > 0 and trainer.global_step % self.every == 0:
            self._write(trainer, "train")

    def on_validation_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._write(trainer, "val")


def _world() -> tuple[int, int]:
    """(world size, rank) of the running process group; (1, 0) outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class ResumableSampler(torch.utils.data.DistributedSampler):
    """The training order of every Lightning task: a seeded shuffle (the order DataLoader(shuffle=True,
    generator=Generator().manual_seed(seed)) gives) that

    - resumes mid-epoch: `ResumeDataOrder` (added by `make_trainer`) sets `skip` from the restored step, so a
      killed-and-resumed run sees exactly the batches an uninterrupted one would;
    - splits each global batch across DDP ranks (rank r takes its `batch_size` slice of every `world x
      batch_size` block), so N processes with per-device batch b train on exactly the batches of one process
      with batch N x b, and Lightning leaves it alone (it is a DistributedSampler; the world is read when
      iterating, as the process group starts after the loader is built).
    """

    def __init__(self, n: int, seed: int, batch_size: int = 1) -> None:  # no super().__init__: see above
        self.n, self.seed, self.batch_size, self.epoch, self.skip = n, seed, batch_size, 0, 0
        self.shuffle, self.drop_last = True, True

    @property
    def num_replicas(self) -> int:
        return _world()[0]

    @property
    def rank(self) -> int:
        return _world()[1]

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of every epoch
        self.epoch = epoch

    def order(self) -> list[int]:
        # Replayed from the seed: per epoch DataLoader draws one number for its workers' base seed, then
        # RandomSampler a permutation, then (on exhausting it) one more, empty-sliced permutation.
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epoch + 1):
            torch.empty((), dtype=torch.int64).random_(generator=g)
            order = torch.randperm(self.n, generator=g)
            torch.randperm(self.n, generator=g)
        return order.tolist()

    def __iter__(self) -> Any:
        skip, self.skip = self.skip, 0
        order = self.order()[skip:]
        world, rank = _world()
        if world == 1:
            return iter(order)
        b, block = self.batch_size, self.batch_size * world
        full = len(order) // block * block
        return iter([order[k + rank * b + j] for k in range(0, full, block) for j in range(b)])

    def __len__(self) -> int:
        world, _ = _world()
        return self.n if world == 1 else self.n // (self.batch_size * world) * self.batch_size


def shuffled_loader(dataset: Any, batch_size: int, seed: int, num_workers: int = 0, **kwargs: Any) -> Any:
    """A shuffling DataLoader whose order survives --resume and is the same global order on any number of
    DDP processes (full batches only, as every epoch must match)."""
    sampler = ResumableSampler(len(dataset), seed, batch_size)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                                       drop_last=len(dataset) > batch_size, **kwargs)


class ResumeDataOrder(Callback):
    """On resume, skip the samples of the batches the checkpointed epoch had already trained on."""

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, ResumableSampler) or not trainer.global_step:
            return
        per_epoch = len(loader)  # full batches per process (shuffled_loader drops the last partial one)
        done = trainer.global_step * trainer.accumulate_grad_batches - trainer.current_epoch * per_epoch
        if 0 < done < per_epoch:  # a finished epoch needs no skipping: Lightning starts the next one
            sampler.skip = done * loader.batch_size * trainer.world_size  # in samples of the global order


class StepProgress(Callback):
    """A progress bar over optimizer steps toward ``max_steps`` with the train loss and an ETA (Lightning's own
    bar counts epochs, meaningless for step-budgeted training). Shown only on a terminal, on rank 0."""

    def __init__(self, description: str) -> None:
        self.description, self.progress, self.bar = description, None, None

    @staticmethod
    def text(step: int, total: int, loss: float | None) -> str:
        return f"step {step}/{total}" + (f"  train_loss {loss:.4f}" if loss is not None else "")

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.is_global_zero:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
        self.progress.start()
        total = trainer.max_steps
        self.bar = self.progress.add_task(self.description, total=total, completed=trainer.global_step,
                                          status=self.text(trainer.global_step, total, None))

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.progress is None:
            return
        loss = trainer.callback_metrics.get("train_loss")
        status = self.text(trainer.global_step, trainer.max_steps, float(loss) if loss is not None else None)
        self.progress.update(self.bar, completed=trainer.global_step, status=status)

    def on_train_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def make_trainer(ctx: Any, cfg: TrainerConfig, callbacks: list | tuple = (), **overrides: Any) -> L.Trainer:
    """A Lightning Trainer writing into the run folder; `overrides` go to `L.Trainer` as is."""
    from lightning.pytorch.loggers import CSVLogger

    from .runner import quiet_third_party

    quiet_third_party()  # Lightning added its console handler on import: its banners go to run.log
    # A new version folder per (re)start: a resumed run keeps every earlier log (logs/version_0, version_1, ...).
    loggers: list = [CSVLogger(str(ctx.out / "logs"), name="", version=None)]
    try:
        import tensorboard  # noqa: F401  (TensorBoardLogger needs it)
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(ctx.out / "logs"), name="tensorboard", version=None))
    except ImportError:
        pass
    checkpoint = ModelCheckpoint(
        dirpath=str(ctx.checkpoint_dir), save_last=True, save_top_k=0, every_n_train_steps=max(1, cfg.checkpoint_every)
    )
    cbs: list = [checkpoint, MetricsToRun(ctx, cfg.log_every), ResumeDataOrder(), *callbacks]
    if sys.stderr.isatty():
        from .context import Stage

        cbs.append(StepProgress(ctx.name if isinstance(ctx, Stage) else f"{ctx.plugin}:{ctx.task}"))
    accelerator = cfg.accelerator
    if accelerator == "auto" and ctx.device == "cpu":
        accelerator = "cpu"
    kwargs = dict(
        max_steps=cfg.max_steps,
        accelerator=accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val or None,
        val_check_interval=None,
        check_val_every_n_epoch=None,
        log_every_n_steps=max(1, cfg.log_every),
        logger=loggers,
        callbacks=cbs,
        default_root_dir=str(ctx.out),
        enable_progress_bar=False,  # StepProgress instead
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
    )
    kwargs["val_check_interval"] = max(1, cfg.val_every) * max(1, cfg.accumulate_grad_batches)
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def adamw_config(model: torch.nn.Module, cfg: OptimConfig, total_steps: int) -> dict:
    """What `LightningModule.configure_optimizers` returns for AdamW + warmup/cosine stepped every step."""
    opt, sched = adamw(model, cfg, total_steps)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def last_checkpoint(ctx: Any) -> str | None:
    path = Path(ctx.checkpoint_dir) / "last.ckpt"
    return str(path) if path.is_file() else None


def fit(ctx: Any, trainer: L.Trainer, module: L.LightningModule, train: Any, val: Any = None) -> None:
    """`trainer.fit`, continuing from checkpoints/last.ckpt when the run is resumed."""
    ckpt = last_checkpoint(ctx) if ctx.resume else None
    if ctx.resume:
        ctx.log.info(f"resuming from {ckpt}" if ckpt else "no checkpoint yet: starting from scratch")
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val, ckpt_path=ckpt)
