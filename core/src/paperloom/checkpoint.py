"""Resumable state for plain-torch training loops (Lightning tasks use `paperloom.training` instead).

    ckpt = Checkpoint(ctx, "last")                      # ctx.checkpoint_dir / "last.pt"
    step = ckpt.restore(model, opt, sched)              # 0 unless --resume and a checkpoint exists
    while step < steps:
        ...; step += 1
        if step % every == 0 or step == steps:
            ckpt.save(step, model, opt, sched)

A checkpoint holds the model, optimizer and scheduler state, the step, every RNG the loop may draw
from (Python, NumPy, torch CPU and CUDA) and any extra plain data; it is written to a temp file and
renamed, so a kill never leaves a torn file, and read with ``weights_only=True`` (no pickled code).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .io import atomic_write_bytes


def rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np

        name, keys, pos, has_gauss, gauss = np.random.get_state()
        # as a tensor and plain numbers: weights_only loading refuses numpy arrays
        state["numpy"] = (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))
    except ImportError:
        pass
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, step: int, model: Any, optimizer: Any = None, scheduler: Any = None,
                    **extra: Any) -> Path:
    """Write model/optimizer/scheduler state, `step`, RNG states and `extra` atomically to `path`."""
    buf = io.BytesIO()
    torch.save(
        {
            "step": int(step),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else {},
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "rng": rng_state(),
            "extra": extra,
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def load_checkpoint(path: str | Path, map_location: Any = "cpu", **kwargs: Any) -> Any:
    """Read a torch checkpoint safely (``weights_only``: tensors and plain data, never pickled code). Every
    checkpoint the core or a plugin loads goes through here or `load_safetensors`: a torn, corrupt or
    code-carrying file is a one-line `UserError` naming the file and what to do."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file; check the path (or drop --resume to start afresh)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, **kwargs)  # e.g. mmap=True
    except Exception as exc:  # truncated zip, pickled code, not a checkpoint at all
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            what = "it holds pickled Python objects, which are never loaded (they can run code)"
        else:
            what = f"not a readable checkpoint ({type(exc).__name__}: {_first_line(exc)})"
        raise UserError(f"{path}: {what}; delete it to start afresh, or use an intact checkpoint") from None


def open_safetensors(path: str | Path) -> Any:
    """A lazy `safetensors.safe_open` handle (read single tensors or slices); a torn file is a `UserError`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file; check the checkpoint folder")
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # safetensors raises its own error types for torn files
        raise UserError(
            f"{path}: not a readable safetensors file ({_first_line(exc)}); re-export or re-download the weights"
        ) from None


def load_safetensors(path: str | Path, device: str = "cpu") -> dict:
    """All tensors of a safetensors file; a torn or foreign file is a one-line `UserError`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weights file; check the checkpoint folder")
    try:
        return load_file(str(path), device=device)
    except Exception as exc:
        raise UserError(
            f"{path}: not a readable safetensors file ({_first_line(exc)}); re-export or re-download the weights"
        ) from None


def restore(state: dict, model: Any, optimizer: Any = None, scheduler: Any = None) -> int:
    """Load `state` (from `load_checkpoint`) into the objects given; returns the step it was saved at."""
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler"):
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state.get("rng", {}))
    return int(state["step"])


class Checkpoint:
    """The checkpoint ``<ctx.checkpoint_dir>/<name>.pt`` of one training loop, honouring ``--resume``."""

    def __init__(self, ctx: Any, name: str = "last") -> None:
        self.ctx, self.path = ctx, Path(ctx.checkpoint_dir) / f"{name}.pt"
        self.extra: dict = {}

    def restore(self, model: Any, optimizer: Any = None, scheduler: Any = None) -> int:
        """The step to continue from: the saved one under ``--resume`` (state loaded), else 0."""
        if not (self.ctx.resume and self.path.is_file()):
            return 0
        state = load_checkpoint(self.path)
        step = restore(state, model, optimizer, scheduler)
        self.extra = dict(state.get("extra") or {})
        self.ctx.log.info(f"resumed at step {step} from {self.path}")
        return step

    def save(self, step: int, model: Any, optimizer: Any = None, scheduler: Any = None, **extra: Any) -> Path:
        return save_checkpoint(self.path, step, model, optimizer, scheduler, **extra)
