"""trl wiring: TR-DPO / TR-IPO / TR-KTO as trl's DPOTrainer and KTOTrainer with the reference update on, and
the SFT warm-up as trl's SFTTrainer.

The reference update is trl's own (`reference_update.py` says how); what changes w.r.t. plain trl is an
explicit in-memory reference copy, the reference saved with every trainer checkpoint (`RefCheckpoint`, restored
on resume by `reference_update.load_reference`), and trl's CPU-hostile defaults overridden (bf16 and gradient
checkpointing off unless asked for, the learning rate from the config).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from paperloom_lm.hf import quiet  # noqa: E402

from paperloom import UserError  # noqa: E402

from .data import is_unpaired  # noqa: E402
from .reference_update import RefCheckpoint, make_reference, sync_schedule  # noqa: E402


def trl_args(kind: str, out_dir: str | Path, train: Any, device: str, seed: int, **extra: Any) -> Any:
    """A trl config (DPOConfig / KTOConfig / SFTConfig) from `TrainArgs`; checkpoints every train.save_steps."""
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


def sft_trainer(policy: Any, tokenizer: Any, rows: Any, *, train: Any, out_dir: str | Path, device: str = "cpu",
                seed: int = 0, callbacks: tuple = (), **trl_kwargs: Any) -> Any:
    """trl's SFTTrainer on (prompt, completion) rows, loss on the completion only."""
    from datasets.utils.logging import disable_progress_bar
    from trl import SFTTrainer

    disable_progress_bar()  # before trl tokenizes the data
    args = trl_args("sft", out_dir, train, device, seed, completion_only_loss=True, **trl_kwargs)
    return quiet(SFTTrainer(model=policy, args=args, train_dataset=rows, processing_class=tokenizer,
                            callbacks=list(callbacks)))


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

    disable_progress_bar()  # before trl tokenizes the data
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
        args = trl_args("kto", out_dir, train, device, seed, loss_type="kto", **common)
        if not is_unpaired(dataset):  # trl unpairs chosen/rejected rows itself; shuffle so a batch mixes both
            from trl.data_utils import unpair_preference_dataset

            dataset = unpair_preference_dataset(dataset)
        dataset = dataset.shuffle(seed=seed)  # KTO reads its data sequentially (its KL term pairs neighbours)
        trainer = KTOTrainer(model=policy, ref_model=ref_model, args=args, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=list(callbacks))
    else:
        loss_type = {"dpo": "sigmoid", "ipo": "ipo"}[loss]
        args = trl_args("dpo", out_dir, train, device, seed, loss_type=[loss_type], **common)
        trainer = DPOTrainer(model=policy, ref_model=ref_model, args=args, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=list(callbacks))
    if trainer.ref_model is not None:
        trainer.ref_model.requires_grad_(False)  # the reference never receives gradients
    trainer.add_callback(RefCheckpoint(trainer))
    return quiet(trainer)
