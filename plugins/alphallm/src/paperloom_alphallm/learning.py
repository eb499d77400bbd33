"""Training through the core Lightning path: pre-training the policy (plugins/lm's recipe), supervised
fine-tuning on search trajectories (target loss, Sec. 4.5), and fitting the critics (Sec. 4.4)."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
from paperloom_lm.causal_lm import CausalLMModule
from paperloom_lm.data import Blocks, pack
from paperloom_lm.pretrain import pretrain
from torch.utils.data import Dataset

from paperloom import UserError
from paperloom.training import adamw_config, fit, make_trainer, shuffled_loader

from .critics import CriticData, critic_loss
from .data import document, prompt


def pretrain_policy(model: Any, tokenizer: Any, problems: list[dict], optim: Any, trainer_cfg: Any, ctx: Any,
                    block_size: int = 128, val_fraction: float = 0.05) -> dict:
    """Pre-train on prompt + solution texts packed into blocks: `paperloom_lm.pretrain.pretrain` unchanged."""
    rows = pack([document(p["question"], p["answer"]) for p in problems], tokenizer, block_size)
    n_val = max(1, int(len(rows) * val_fraction))
    if len(rows) - n_val < 1:
        raise UserError(f"only {len(rows)} blocks of {block_size} tokens: add problems or lower block_size")
    return pretrain(model, Blocks(rows[n_val:], tokenizer), Blocks(rows[:n_val], tokenizer), optim,
                    copy.deepcopy(trainer_cfg), ctx)


class SFTData(Dataset):
    """(question, solution) pairs as right-padded rows whose labels are -100 outside the solution: the
    target loss log pi(y | x) of Sec. 4.5 (HF causal LMs shift labels inside)."""

    def __init__(self, pairs: list[dict], tokenizer: Any, max_len: int = 256) -> None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        encoded = []
        for p in pairs:
            x = tokenizer(prompt(p["question"]), add_special_tokens=False)["input_ids"]
            y = tokenizer(p["solution"].strip() + "\n", add_special_tokens=False)["input_ids"]
            y = y + [tokenizer.eos_token_id]
            encoded.append(((x + y)[:max_len], len(x)))
        if not encoded:
            raise UserError("no trajectories to fine-tune on: the filter kept none; lower improve.threshold")
        width = max(len(ids) for ids, _ in encoded)
        for ids, n_prompt in encoded:
            inp = torch.full((width,), pad, dtype=torch.long)
            lab = torch.full((width,), -100, dtype=torch.long)
            inp[:len(ids)] = torch.tensor(ids)
            lab[n_prompt:len(ids)] = torch.tensor(ids[n_prompt:])
            self.rows.append((inp, lab))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.rows[i][0], "labels": self.rows[i][1]}


def sft(model: Any, tokenizer: Any, pairs: list[dict], optim: Any, trainer_cfg: Any, ctx: Any) -> dict:
    """Fine-tune the policy on kept search trajectories (plugins/lm's CausalLMModule, the core Trainer)."""
    data = SFTData(pairs, tokenizer)
    t = copy.deepcopy(trainer_cfg)
    model.train()
    trainer = make_trainer(ctx, t)
    fit(ctx, trainer, CausalLMModule(model, optim, t.max_steps), shuffled_loader(data, t.batch_size, ctx.seed))
    model.cpu().eval()
    loss = trainer.callback_metrics.get("train_loss")
    return {"sft_loss": float(loss) if loss is not None else float("nan"), "sft_examples": len(data),
            "sft_steps": trainer.global_step}


class CriticModule(L.LightningModule):
    """Fit a `model.Critic` (value MSE + PRM / ORM cross-entropy) with AdamW + warmup/cosine."""

    def __init__(self, critic: torch.nn.Module, optim: Any, total_steps: int) -> None:
        super().__init__()
        self.critic, self.optim, self.total_steps = critic, optim, total_steps

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss = critic_loss(self.critic, batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        return adamw_config(self.critic, self.optim, self.total_steps)


def train_critic(critic: Any, examples: list[dict], pad_id: int, optim: Any, trainer_cfg: Any, ctx: Any) -> dict:
    if not examples:
        raise UserError("no rollouts to train the critics on; raise critics.problems or critics.samples")
    data = CriticData(examples, pad_id)
    t = copy.deepcopy(trainer_cfg)
    critic.train()
    trainer = make_trainer(ctx, t)
    fit(ctx, trainer, CriticModule(critic, optim, t.max_steps), shuffled_loader(data, t.batch_size, ctx.seed))
    critic.cpu().eval()
    loss = trainer.callback_metrics.get("train_loss")
    return {"critic_loss": float(loss) if loss is not None else float("nan"), "critic_examples": len(data)}
