"""The four training strategies of Scaling (Down) CLIP (Li et al. 2024, Sec. 3), each a small delta on one
Lightning module:

- CLIP: the symmetric contrastive loss (`loss.clip_loss`), logit scale clamped at 100;
- SLIP (Mu et al. 2022): + ssl_weight * SimCLR loss of an MLP head (d -> 4096 -> 4096 -> 256, BN + ReLU) on two
  augmented views of the image tower's pooled features (the views come from the collate);
- FLIP (Li et al. 2023): the image tower sees only a random 1 - flip_ratio of the patch tokens in training
  (`flip.patch_dropout`); optionally the last `unmasked_steps` steps train unmasked ("unmasked tuning");
- CLIP+DataAug: CLIP's loss on strongly augmented images (the collate's `strong_view`; no change here).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from paperloom.training import adamw_config

from .loss import MAX_LOGIT_SCALE, clip_loss, simclr_loss


def ssl_head(width: int, mlp_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """SLIP's image_mlp (SLIP models.py `_build_mlp`): Linear-BN-ReLU, Linear-BN-ReLU, Linear."""
    return nn.Sequential(nn.Linear(width, mlp_dim), nn.BatchNorm1d(mlp_dim), nn.ReLU(inplace=True),
                         nn.Linear(mlp_dim, mlp_dim), nn.BatchNorm1d(mlp_dim), nn.ReLU(inplace=True),
                         nn.Linear(mlp_dim, out_dim))


class ContrastiveModule(L.LightningModule):
    """Trains any `image-text-encoder` CLIP model with strategy `s` (config.StrategyConfig)."""

    def __init__(self, model: Any, s: Any, optim: Any = None, total_steps: int = 1) -> None:
        super().__init__()
        self.model, self.s, self.optim, self.total_steps = model, s, optim, total_steps
        width = model.visual_projection.in_features
        self.ssl_head = ssl_head(width, s.ssl_mlp_dim, s.ssl_out_dim) if s.name == "slip" else None

    def drop_ratio(self, step: int | None = None) -> float:
        """FLIP's patch-drop ratio at `step` (default: the current one): 0 in the final unmasked steps."""
        if self.s.name != "flip":
            return 0.0
        step = self.global_step if step is None else step
        return 0.0 if step >= self.total_steps - self.s.unmasked_steps else self.s.flip_ratio

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        image = self.model.encode_image(batch["image"], self.drop_ratio())
        text = self.model.encode_text(batch["input_ids"], batch["attention_mask"])
        out = {"clip_loss": clip_loss(image, text, self.model.logit_scale, self.s.local_loss)}
        out["loss"] = out["clip_loss"]
        if self.ssl_head is not None:  # SLIP: total = CLIP + ssl_weight * SSL (SLIP Sec. 3, weight 1.0)
            za = self.ssl_head(self.model.image_embed(batch["view1"]))
            zb = self.ssl_head(self.model.image_embed(batch["view2"]))
            out["ssl_loss"] = simclr_loss(za, zb, self.s.ssl_tau)
            out["loss"] = out["loss"] + self.s.ssl_weight * out["ssl_loss"]
        return out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.losses(batch)
        self.log_dict({f"train_{k}": v.detach() for k, v in out.items()}, prog_bar=False, sync_dist=False)
        self.log("train_logit_scale", self.model.logit_scale.detach().exp())
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val_loss", self.losses(batch)["clip_loss"], sync_dist=True)

    def on_train_batch_end(self, *args: Any) -> None:
        with torch.no_grad():  # open_clip: clamp(0, ln 100) after every step
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)

    def configure_optimizers(self) -> dict:
        return adamw_config(self, self.optim, self.total_steps)
