"""TR-DPO / TR-IPO / TR-KTO trainers: trl's DPOTrainer and KTOTrainer with the reference update switched on.

Gorbatovski et al., "Learn Your Reference Model for Real Good Alignment" (arXiv 2404.09656), Sec. 3:

    soft update (Eq. 5):  pi_ref <- alpha * pi_theta + (1 - alpha) * pi_ref    (after every step, tau = 1)
    hard update (Eq. 6):  pi_ref <- pi_theta                                 (every tau steps, alpha = 1)

trl implements the general form (every ``ref_model_sync_steps`` steps, mix with ``ref_model_mixup_alpha``) in
`trl.trainer.callbacks.SyncRefModelCallback`, which runs at ``on_step_end`` when ``global_step % tau == 0``,
so syncs happen at steps tau, 2 tau, ... after the optimizer step. This module only wires it up: the only
changes w.r.t. plain trl are (1) an explicit in-memory reference copy (trl would re-read ``_name_or_path``),
(2) the reference saved with every trainer checkpoint and restored on resume (trl does not save it, and a
moved reference is part of the training state), and (3) trl's CPU-hostile defaults overridden.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from paperloom import UserError  # noqa: E402

REF_FILE = "ref_model.safetensors"


def sync_schedule(update: str, alpha: float, tau: int) -> tuple[bool, float, int]:
    """(sync on?, alpha, tau) as trl's `sync_ref_model`, `ref_model_mixup_alpha`, `ref_model_sync_steps`."""
    if update == "none":
        return False, alpha, max(1, tau)
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"config: ref.alpha = {alpha} is not valid; expected a number in [0, 1]")
    if update == "soft":
        return True, alpha, 1
    if tau < 1:
        raise UserError(f"config: ref.tau = {tau} is not valid; expected a positive number of steps")
    if update == "hard":
        return True, 1.0, tau
    if update == "general":
        return True, alpha, tau
    raise UserError(f"config: ref.update = {update!r}; expected none, soft, hard or general")


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


def quiet(trainer: Any) -> Any:
    """Drop transformers' stdout printer (our MetricsToRun logs to the run instead) and datasets' bars."""
    from datasets.utils.logging import disable_progress_bar
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    disable_progress_bar()
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def trl_args(kind: str, out_dir: Path, train: Any, device: str, seed: int, **extra: Any) -> Any:
    """A trl config (DPOConfig / KTOConfig / SFTConfig) with this plugin's settings; checkpoints every save_steps."""
    from trl import DPOConfig, KTOConfig, SFTConfig

    cls = {"dpo": DPOConfig, "kto": KTOConfig, "sft": SFTConfig}[kind]
    kwargs = dict(
        output_dir=str(out_dir), max_steps=train.steps, per_device_train_batch_size=train.batch_size,
        gradient_accumulation_steps=train.grad_accum, learning_rate=train.lr, lr_scheduler_type=train.scheduler,
        warmup_steps=train.warmup_steps, weight_decay=train.weight_decay, max_grad_norm=train.max_grad_norm,
        max_length=train.max_length, logging_steps=train.log_steps, save_strategy="steps", save_steps=train.save_steps,
        save_total_limit=2, bf16=train.bf16, gradient_checkpointing=train.gradient_checkpointing,
        use_cpu=device == "cpu", seed=seed, data_seed=seed, report_to="none", disable_tqdm=True,
        dataloader_num_workers=0)
    kwargs.update(extra)
    return cls(**kwargs)


class RefCheckpoint(TrainerCallback):
    """Save the (moving) reference next to each trainer checkpoint, so a resumed TR run continues it exactly."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from safetensors.torch import save_file

        if not state.is_world_process_zero or self.trainer.ref_model is None:
            return
        ref = self.trainer.accelerator.unwrap_model(self.trainer.ref_model)
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        tensors = {k: v.detach().cpu().contiguous() for k, v in ref.state_dict().items()}
        tmp = folder / f".{REF_FILE}.tmp"
        save_file(_untie(tensors), str(tmp))
        os.replace(tmp, folder / REF_FILE)


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
    from safetensors.torch import load_file

    path = Path(checkpoint) / REF_FILE
    if trainer.ref_model is None or not path.is_file():
        return False
    ref = trainer.accelerator.unwrap_model(trainer.ref_model)
    ref.load_state_dict(load_file(str(path)), strict=False)
    return True


class MetricsToRun(TrainerCallback):
    """Mirror trl's logged metrics (loss, rewards/margins, ...) into the run's metrics.jsonl."""

    def __init__(self, log_metrics: Callable[..., None], prefix: str = "") -> None:
        self.log_metrics, self.prefix = log_metrics, prefix

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        row = {self.prefix + k.replace("/", "_"): float(v) for k, v in logs.items() if isinstance(v, (int, float))}
        if row:
            self.log_metrics(row, step=state.global_step)


def is_peft(model: Any) -> bool:
    try:
        from accelerate.utils import is_peft_model
    except ImportError:  # pragma: no cover
        return False
    return is_peft_model(model)


def align_trainer(policy: Any, tokenizer: Any, dataset: Any, *, loss: str = "dpo", beta: float = 0.05,
                  update: str = "none", alpha: float = 0.6, tau: int = 512, train: Any, out_dir: str | Path,
                  device: str = "cpu", seed: int = 0, ref_model: Any = None, callbacks: tuple = (),
                  precompute_ref_log_probs: bool = False, **trl_kwargs: Any) -> Any:
    """A trl DPOTrainer (loss dpo / ipo) or KTOTrainer (kto) whose reference follows `update` (TR-*)."""
    from datasets.utils.logging import disable_progress_bar
    from trl import DPOTrainer, KTOTrainer

    from .data import is_unpaired

    disable_progress_bar()

    sync, alpha, tau = sync_schedule(update, alpha, tau)
    if sync and precompute_ref_log_probs:
        raise UserError("config: precompute_ref_log_probs = true needs a fixed reference, but ref.update = "
                        f"{update!r} moves it; set precompute_ref_log_probs=false (the reference is run online)")
    if sync and is_peft(policy):
        raise UserError("a PEFT (adapter) policy with a TR reference update is not supported: trl syncs only a "
                        "separate full reference model; merge the adapter into the policy (merge_and_unload) first")
    if loss != "kto" and is_unpaired(dataset):
        raise UserError(f"loss = {loss!r} needs preference pairs (prompt/chosen/rejected), but the data is unpaired "
                        "(prompt/completion/label); use loss=kto or a paired dataset")
    if ref_model is None and not is_peft(policy) and not precompute_ref_log_probs:
        ref_model = make_reference(policy)
    common = dict(beta=beta, sync_ref_model=sync, ref_model_mixup_alpha=alpha, ref_model_sync_steps=tau,
                  precompute_ref_log_probs=precompute_ref_log_probs, **trl_kwargs)
    if loss == "kto":
        args = trl_args("kto", Path(out_dir), train, device, seed, loss_type="kto", **common)
        if not is_unpaired(dataset):  # trl unpairs chosen/rejected rows itself; shuffle so a batch mixes both
            from trl.data_utils import unpair_preference_dataset

            dataset = unpair_preference_dataset(dataset)
        dataset = dataset.shuffle(seed=seed)  # KTO reads its data sequentially (its KL term pairs neighbours)
        trainer = KTOTrainer(model=policy, ref_model=ref_model, args=args, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=list(callbacks))
    else:
        loss_type = {"dpo": "sigmoid", "ipo": "ipo"}[loss]
        args = trl_args("dpo", Path(out_dir), train, device, seed, loss_type=[loss_type], **common)
        trainer = DPOTrainer(model=policy, ref_model=ref_model, args=args, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=list(callbacks))
    if trainer.ref_model is not None:
        trainer.ref_model.requires_grad_(False)  # the reference never receives gradients
    trainer.add_callback(RefCheckpoint(trainer))
    return quiet(trainer)


def last_checkpoint(out_dir: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(out_dir)) if Path(out_dir).is_dir() else None


def train(trainer: Any, resume: bool = False) -> dict:
    """Run trainer.train(), continuing from the newest checkpoint in its output_dir when `resume`."""
    ckpt = last_checkpoint(trainer.args.output_dir) if resume else None
    if ckpt:
        load_reference(trainer, ckpt)
    result = trainer.train(resume_from_checkpoint=ckpt)
    return {"train_loss": float(result.training_loss), "steps": int(trainer.state.global_step)}


def build_trainer(loss: str = "dpo", beta: float = 0.05, update: str = "none", alpha: float = 0.6, tau: int = 512,
                  **train_kwargs: Any) -> Callable[..., dict]:
    """Component ``tr-dpo:trainer``: ``fit(model, train_data, val_data, ctx, tokenizer=...) -> metrics``."""
    from .config import TrainArgs

    targs = TrainArgs(**train_kwargs)

    def fit(model: Any, train_data: Any, val_data: Any = None, ctx: Any = None, tokenizer: Any = None) -> dict:
        if tokenizer is None:
            raise UserError("tr-dpo:trainer needs the policy's tokenizer: fit(model, data, ctx=ctx, tokenizer=tok)")
        out = Path(getattr(ctx, "out", ".")) / "trainer"
        cbs = (MetricsToRun(ctx.log_metrics),) if ctx is not None else ()
        trainer = align_trainer(model, tokenizer, train_data, loss=loss, beta=beta, update=update, alpha=alpha, tau=tau,
                                train=targs, out_dir=out, device=getattr(ctx, "device", "cpu"),
                                seed=getattr(ctx, "seed", 0), callbacks=cbs)
        return train(trainer, resume=bool(getattr(ctx, "resume", False)))

    return fit
