"""The trust-region reference update: its schedule, the moving reference copy, and its checkpoint.

Gorbatovski et al., "Learn Your Reference Model for Real Good Alignment" (arXiv 2404.09656), Sec. 3:

    soft update (Eq. 5):  pi_ref <- alpha * pi_theta + (1 - alpha) * pi_ref    (every tau steps)
    hard update (Eq. 6):  pi_ref <- pi_theta                                 (every tau steps, alpha = 1)
    ema (not the paper's): pi_ref <- alpha * pi_theta + (1 - alpha) * pi_ref   (after every step, tau = 1)

The paper's soft update is applied every tau steps: the paper's setting "alpha 0.6, tau 512" only means
something that way, and it is how the authors' own tooling applies it (trl's SyncRefModelCallback, written
by the paper's first author, mixes with ref_model_mixup_alpha every ref_model_sync_steps; turbo-alignment's
sync_ref_model likewise). Mixing after every step is kept as its own option, `ema`.

The update itself is trl's `SyncRefModelCallback` (``ref.mul_(1 - alpha).add_(theta, alpha=alpha)`` at
``on_step_end`` when ``global_step % tau == 0``, i.e. after the optimizer steps tau, 2 tau, ...). This module
holds what trl lacks: an explicit in-memory reference (trl would re-read ``_name_or_path``) and its checkpoint
(trl saves only the policy, but a moved reference is part of the training state).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from paperloom import UserError
from paperloom.io import atomic_write_bytes

REF_FILE = "ref_model.safetensors"  # beside trl's files in each checkpoint-N/


def sync_schedule(update: str, alpha: float, tau: int) -> tuple[bool, float, int]:
    """(sync on?, alpha, tau) as trl's `sync_ref_model`, `ref_model_mixup_alpha`, `ref_model_sync_steps`."""
    if update == "none":
        return False, alpha, max(1, tau)
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"config: ref.alpha = {alpha} is not valid; expected a number in [0, 1]")
    if update == "ema":
        return True, alpha, 1
    if tau < 1:
        raise UserError(f"config: ref.tau = {tau} is not valid; expected a positive number of steps")
    if update == "hard":
        return True, 1.0, tau
    if update == "soft":
        return True, alpha, tau
    hint = " (the every-tau mix is now called soft)" if update == "general" else ""
    raise UserError(f"config: ref.update = {update!r}; expected none, soft, hard or ema{hint}")


def unpatch(model: Any) -> Any:
    """Drop the fused-LM-head ``forward`` trl sets on a model instance it trained.

    trl's patched forward keeps the *original* instance's forward in a closure, so a ``deepcopy`` of a model
    trl has trained would silently run the original's weights in its plain forward (generation, evaluation).
    """
    model.__dict__.pop("forward", None)
    return model


def fresh_copy(model: Any) -> Any:
    """A deep copy whose forward runs its own weights (see `unpatch`)."""
    return unpatch(copy.deepcopy(model))


def make_reference(policy: torch.nn.Module) -> torch.nn.Module:
    """A frozen in-memory copy of the policy: the initial reference (never a re-read from disk)."""
    ref = fresh_copy(policy)
    ref.eval()
    ref.requires_grad_(False)
    return ref


class RefCheckpoint(TrainerCallback):
    """Save the (moving) reference next to each trainer checkpoint, so a resumed TR run continues it exactly."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from safetensors.torch import save

        if not state.is_world_process_zero or self.trainer.ref_model is None:
            return
        ref = self.trainer.accelerator.unwrap_model(self.trainer.ref_model)
        tensors = {k: v.detach().cpu().contiguous() for k, v in ref.state_dict().items()}
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / REF_FILE
        atomic_write_bytes(path, save(_untie(tensors)))


def _untie(tensors: dict) -> dict:
    """safetensors refuses shared storage (tied embeddings): clone the duplicates."""
    seen, out = set(), {}
    for k, v in tensors.items():
        ptr = v.untyped_storage().data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out


def load_reference(trainer: Any, checkpoint: str | Path) -> bool:
    """Restore the reference saved by `RefCheckpoint`; False when the checkpoint holds none (plain DPO)."""
    from paperloom.checkpoint import load_safetensors

    path = Path(checkpoint) / REF_FILE
    if trainer.ref_model is None or not path.is_file():
        return False
    ref = trainer.accelerator.unwrap_model(trainer.ref_model)
    state = load_safetensors(path)  # a torn file is a one-line error
    expected = set(ref.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:  # a wrong or partial reference must never be accepted silently
        raise UserError(f"{path}: the saved reference does not fit the policy (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}); resume with the policy it was saved with, or delete the checkpoint")
    ref.load_state_dict(state)
    return True
