"""Training and evaluating any ``causal-lm`` model: a Lightning module, loaders, loss by context length.

A ``causal-lm`` model is a Hugging Face ``PreTrainedModel`` whose ``forward(input_ids, labels=...)``
returns ``.loss`` and ``.logits`` (labels are shifted inside the model).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from paperloom import UserError
from paperloom.schemas import OptimConfig
from paperloom.training import adamw_config, shuffled_loader

from .data import Blocks


def lm_loss(model: Any, batch: dict) -> torch.Tensor:
    """Mean next-token cross-entropy (HF models shift `labels` internally)."""
    return model(input_ids=batch["input_ids"], labels=batch["labels"]).loss


class CausalLMModule(L.LightningModule):
    """Train any `causal-lm` model with AdamW + warmup/cosine; logs train_loss, val_loss, val_ppl."""

    def __init__(self, model: torch.nn.Module, optim: OptimConfig, total_steps: int) -> None:
        super().__init__()
        self.model, self.optim, self.total_steps = model, optim, total_steps

    def on_train_start(self) -> None:
        self.model.train()  # from_pretrained returns eval mode: train with the dropout the config asks for

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss = lm_loss(self.model, batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        self.log("val_loss", lm_loss(self.model, batch), prog_bar=True, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("val_loss")
        if loss is not None:
            self.log("val_ppl", torch.exp(loss), sync_dist=True)

    def configure_optimizers(self) -> Any:
        return adamw_config(self.model, self.optim, self.total_steps)


def loaders(
    train: Dataset, val: Dataset, batch_size: int, seed: int = 0, num_workers: int = 0
) -> tuple[DataLoader, DataLoader]:
    shuffled = shuffled_loader(train, batch_size, seed, num_workers)  # its order survives --resume
    return shuffled, DataLoader(val, batch_size=batch_size, num_workers=num_workers)


@torch.no_grad()
def evaluate_lm(model: torch.nn.Module, data: Dataset, batch_size: int = 16, device: str = "cpu") -> dict[str, float]:
    """Token-weighted mean validation loss and perplexity."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in DataLoader(data, batch_size=batch_size):
        ids = batch["input_ids"].to(device)
        loss = model(input_ids=ids, labels=ids).loss
        n = ids.shape[0] * (ids.shape[1] - 1)
        total += float(loss) * n
        count += n
    model.train(was_training)
    if count == 0:
        raise UserError("evaluation data is empty")
    mean = total / count
    return {"val_loss": mean, "val_ppl": math.exp(min(mean, 50.0))}


def cut(stream: torch.Tensor, length: int, max_tokens: int = 0, tokenizer: Any = None) -> Blocks:
    """A contiguous token stream cut into sequences of `length` (at most `max_tokens` tokens)."""
    if length < 2:
        raise UserError(f"context length {length} is too short; use lengths >= 2")
    n = stream.numel() // length
    if max_tokens:
        n = min(n, max(1, max_tokens // length))
    if n == 0:
        raise UserError(f"the evaluation text has {stream.numel()} tokens, fewer than one sequence of {length}; "
                        "add text or lower the context length")
    return Blocks(stream[: n * length].view(n, length), tokenizer)


def loss_by_length(model: torch.nn.Module, stream: torch.Tensor, lengths: list[int], batch_size: int, device: str,
                   max_tokens: int = 0) -> dict[str, float]:
    """Token-weighted val loss / perplexity when the token stream is cut into sequences of each length."""
    out: dict[str, float] = {}
    for length in lengths:
        res = evaluate_lm(model, cut(stream, length, max_tokens), batch_size, device=device)
        out[f"val_loss_ctx{length}"], out[f"val_ppl_ctx{length}"] = res["val_loss"], res["val_ppl"]
    return out
