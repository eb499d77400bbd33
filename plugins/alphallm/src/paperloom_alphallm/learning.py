"""Training through the core Lightning path: pre-training the policy (plugins/lm's recipe), supervised
fine-tuning on search trajectories (target loss, Sec. 4.5), and fitting the critics (Sec. 4.4)."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
from paperloom_lm.causal_lm import CausalLMModule
from paperloom_lm.data import Blocks, pack
from torch.utils.data import Dataset

from paperloom import UserError
from paperloom.training import adamw_config, fit, make_trainer, shuffled_loader

from .critics import CriticData, critic_loss
from .data import document, prompt


def pretrain_policy(model: Any, tokenizer: Any, problems: list[dict], optim: Any, trainer_cfg: Any, ctx: Any,
                    block_size: int = 128, val_fraction: float = 0.05, dev: list[dict] | None = None,
                    target: float = 0.0, check_every: int = 25) -> dict:
    """Pre-train on prompt + solution texts packed into blocks (plugins/lm's recipe: its module, loaders and
    AdamW + warmup/cosine). With `target` > 0 training stops at the first check (every `check_every` steps)
    where greedy accuracy on the `dev` problems reaches `target`: the demo's policy is meant to be modest
    (the issue: roughly 30-50%), and a fixed step count lands anywhere from 40% to 93% depending on the seed."""
    from paperloom_lm.causal_lm import evaluate_lm, loaders

    rows = pack([document(p["question"], p["answer"]) for p in problems], tokenizer, block_size)
    n_val = max(1, int(len(rows) * val_fraction))
    if len(rows) - n_val < 1:
        raise UserError(f"only {len(rows)} blocks of {block_size} tokens: add problems or lower block_size")
    train, val = Blocks(rows[n_val:], tokenizer), Blocks(rows[:n_val], tokenizer)
    t = copy.deepcopy(trainer_cfg)
    init = evaluate_lm(model, val, t.batch_size)
    stop = AccuracyStop(model, tokenizer, dev or [], target, check_every)
    model.train()
    trainer = make_trainer(ctx, t, callbacks=[stop] if target > 0 and dev else [])
    train_dl, val_dl = loaders(train, val, t.batch_size, ctx.seed, t.num_workers)
    fit(ctx, trainer, CausalLMModule(model, optim, t.max_steps), train_dl, val_dl)
    model.cpu()
    if target > 0 and dev:
        stop.finish()
    final = evaluate_lm(model, val, t.batch_size)
    return {"init_val_loss": init["val_loss"], **final, "steps": trainer.global_step, "dev_curve": stop.history}


class AccuracyStop(L.Callback):
    """Polyak averaging of the weights during pre-training (an exponential moving average, `decay` per step)
    and, every `every` steps, the averaged model's greedy `#### n` accuracy on dev problems; training stops
    once the mean of the last `window` checks reaches `target`, and the model keeps the averaged weights.
    Measured on the demo: the raw iterate at the high learning rate this policy needs is a noisy snapshot (dev
    accuracy 0.33, 0.20, 0.30, 0.52 at steps 325-400), so a target stop on it picked an upward fluctuation
    that any further step (one SFT round) undid (greedy 0.60 -> 0.44); the average is smoother. With a single
    check as the stop rule, seed 1 stopped on a jump from 0.27 to 0.40 and was 0.24 on the test problems."""

    def __init__(self, model: Any, tokenizer: Any, problems: list[dict], target: float, every: int,
                 decay: float = 0.97, window: int = 2) -> None:
        from .options import Stepper

        self.model, self.problems, self.target, self.every, self.decay = model, problems, target, max(1, every), decay
        self.window = max(1, window)
        self.stepper = Stepper(tokenizer) if problems else None
        self.history: list[tuple[int, float]] = []
        self.ema: dict[str, torch.Tensor] | None = None

    def _params(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        from .data import is_correct
        from .decoding import greedy

        with torch.no_grad():
            if self.ema is None:
                self.ema = {k: v.detach().clone() for k, v in self._params().items()}
            else:
                for k, v in self._params().items():
                    self.ema[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
        step = trainer.global_step
        if not self.problems or step % self.every or (self.history and self.history[-1][0] == step):
            return
        raw = {k: v.detach().clone() for k, v in self._params().items()}
        self.model.load_state_dict(self.ema, strict=False)
        self.model.eval()
        right = sum(is_correct(greedy(self.model, self.stepper, p["question"])["text"], p["answer"])
                    for p in self.problems)
        self.model.train()
        self.model.load_state_dict(raw, strict=False)
        acc = right / len(self.problems)
        self.history.append((step, acc))
        last = [a for _, a in self.history[-self.window:]]
        if len(last) == self.window and sum(last) / self.window >= self.target:
            trainer.should_stop = True  # the mean of the last `window` checks: one lucky check does not stop it

    def finish(self) -> None:
        """Give the model the averaged weights (after training)."""
        if self.ema is not None and self.problems:
            self.model.load_state_dict({k: v.cpu() for k, v in self.ema.items()}, strict=False)


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
