"""A small panoptic baseline: a torchvision-block encoder-decoder with semantic, center and offset heads.

The heads follow Panoptic-DeepLab (Cheng et al., CVPR 2020) at toy scale: per-pixel class logits,
an instance-center heatmap and per-pixel offsets to the instance center. Post-processing keeps
center peaks, groups every thing pixel to its nearest predicted center, votes the class, and
makes one segment per stuff class. Output is COCO panoptic (ids + segments_info), so every
evaluator here reads it like a prediction folder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .categories import COCO_PANOPTIC_CATEGORIES


@dataclass
class BaselineConfig:
    """Sizes and post-processing thresholds of `PanopticBaseline` (saved with its checkpoints)."""

    width: int = 32  # channels at full resolution; 2w at 1/2, 4w at 1/4
    center_threshold: float = 0.2  # a center-heatmap peak below this starts no instance
    min_area: int = 4  # segments of fewer pixels are dropped


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(Conv2dNormActivation(cin, cout, 3, stride=stride, dilation=dilation),
                         Conv2dNormActivation(cout, cout, 3))


class PanopticBaseline(nn.Module):
    """Encoder (1, 1/2, 1/4 resolution) + U-Net decoder; heads: semantic (C), center (1), offset (2)."""

    def __init__(self, categories: list[dict] | None = None, config: BaselineConfig | None = None) -> None:
        super().__init__()
        cats = sorted(categories or COCO_PANOPTIC_CATEGORIES, key=lambda c: c["id"])
        self.categories = [{"id": int(c["id"]), "name": c.get("name", ""), "isthing": int(c.get("isthing", 0))}
                           for c in cats]
        self.register_buffer("isthing", torch.tensor([c["isthing"] for c in self.categories], dtype=torch.bool))
        self.config = config or BaselineConfig()
        w = self.config.width
        self.stem = Conv2dNormActivation(3, w, 3)  # full resolution, one conv: cheap on 3 channels
        self.enc2 = _block(w, 2 * w, stride=2)
        self.enc3 = _block(2 * w, 4 * w, stride=2)
        self.ctx = Conv2dNormActivation(4 * w, 4 * w, 3, dilation=2)
        self.dec2 = Conv2dNormActivation(4 * w + 2 * w, 2 * w, 3)
        self.dec1 = Conv2dNormActivation(2 * w + w, w, 3)
        self.sem = nn.Conv2d(w, len(self.categories), 1)
        self.center = nn.Conv2d(w, 1, 1)
        self.offset = nn.Conv2d(w, 2, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # x: (B, 3, H, W) floats in [0, 1]; H, W divisible by 4
        x = (x - 0.45) / 0.25
        e1 = self.stem(x)  # (B, w, H, W)
        e2 = self.enc2(e1)  # (B, 2w, H/2, W/2)
        e3 = self.ctx(self.enc3(e2))  # (B, 4w, H/4, W/4)
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return {"sem": self.sem(d1), "center": self.center(d1), "offset": self.offset(d1)}

    @torch.no_grad()
    def predict_panoptic(self, images: torch.Tensor) -> list[tuple[np.ndarray, list[dict]]]:
        """(B, 3, H, W) in [0, 1] -> per image (ids uint32 HxW, segments_info with category ids and scores)."""
        self.eval()
        h, w = images.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        out = self(F.pad(images, (0, pw, 0, ph), mode="replicate"))
        out = {k: v[..., :h, :w] for k, v in out.items()}
        prob = out["sem"].softmax(1)
        center = out["center"][:, 0].sigmoid()
        return [self._panoptic(prob[b], center[b], out["offset"][b]) for b in range(images.shape[0])]

    def _panoptic(self, prob: torch.Tensor, center: torch.Tensor, offset: torch.Tensor) -> tuple[np.ndarray, list]:
        conf, sem = prob.max(0)  # (H, W)
        h, w = sem.shape
        ids = torch.zeros(h, w, dtype=torch.int64)
        segs: list[dict] = []
        thing_px = self.isthing[sem]
        peaks = (center == F.max_pool2d(center[None, None], 5, 1, 2)[0, 0]) & (center > self.config.center_threshold)
        py, px = torch.nonzero(peaks, as_tuple=True)
        if len(py) and thing_px.any():
            order = center[py, px].argsort(descending=True)[:100]
            cy, cx = py[order].float(), px[order].float()
            yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                    indexing="ij")
            ty, tx = yy + offset[0], xx + offset[1]  # where each pixel says its center is
            d = (ty[None] - cy[:, None, None]) ** 2 + (tx[None] - cx[:, None, None]) ** 2
            inst = d.argmin(0)  # (H, W) nearest center
            for k in range(len(cy)):
                m = thing_px & (inst == k)
                if int(m.sum()) < self.config.min_area:
                    continue
                cls = int(torch.bincount(sem[m], minlength=len(self.categories)).argmax())
                if not self.isthing[cls]:
                    continue
                sid = len(segs) + 1
                ids[m] = sid
                score = float(center[int(cy[k]), int(cx[k])]) * float(conf[m].mean())
                segs.append({"id": sid, "category_id": self.categories[cls]["id"], "iscrowd": 0, "score": score})
        for cls in torch.unique(sem[~thing_px]).tolist():
            m = (sem == cls) & ~thing_px
            if int(m.sum()) < self.config.min_area:
                continue
            sid = len(segs) + 1
            ids[m] = sid
            segs.append({"id": sid, "category_id": self.categories[cls]["id"], "iscrowd": 0,
                         "score": float(conf[m].mean())})
        ids_np = ids.numpy().astype(np.uint32)
        counts = np.bincount(ids_np.ravel(), minlength=len(segs) + 1)
        for s in segs:
            s["isthing"] = int(self.isthing[[c["id"] for c in self.categories].index(s["category_id"])])
            s["area"] = int(counts[s["id"]])
        return ids_np, [s for s in segs if s["area"] > 0]


# --------------------------------------------------------------------------- training targets


def targets(item: dict, cat_index: dict[int, int], sigma: float = 2.0) -> dict[str, torch.Tensor]:
    """Semantic (255 = ignore), center heatmap, offsets and offset weights from one dataset item (vectorized)."""
    masks = item["masks"].bool().numpy()  # (N, H, W)
    n, h, w = masks.shape
    sem = np.full((h, w), 255, np.int64)
    center = np.zeros((h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    if n:
        cls = np.asarray([cat_index[int(c)] for c in item["labels"]], np.int64)
        covered = masks.any(0)
        sem[covered] = cls[masks.argmax(0)[covered]]
        inst = (item["isthing"] & ~item["iscrowd"]).numpy() & masks.reshape(n, -1).any(1)
        if inst.any():
            m = masks[inst].astype(np.float32)  # (K, H, W)
            yy, xx = np.mgrid[:h, :w].astype(np.float32)
            area = m.sum((1, 2))
            cy, cx = (m * yy).sum((1, 2)) / area, (m * xx).sum((1, 2)) / area
            g = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / (2 * sigma**2))
            center = g.max(0)
            offset[0] = (m * (cy[:, None, None] - yy)).sum(0)
            offset[1] = (m * (cx[:, None, None] - xx)).sum(0)
            weight = m.sum(0).clip(0, 1)
    return {"sem": torch.from_numpy(sem), "center": torch.from_numpy(center), "offset": torch.from_numpy(offset),
            "offset_weight": torch.from_numpy(weight)}


def loss_fn(out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    sem = F.cross_entropy(out["sem"], tgt["sem"], ignore_index=255)
    center = F.mse_loss(out["center"][:, 0].sigmoid(), tgt["center"]) * 50.0
    wgt = tgt["offset_weight"][:, None]
    offset = (F.l1_loss(out["offset"], tgt["offset"], reduction="none") * wgt).sum() / wgt.sum().clamp(min=1) * 0.05
    total = sem + center + offset
    return total, {k: v.item() for k, v in (("loss", total), ("sem_loss", sem), ("center_loss", center),
                                   ("offset_loss", offset))}
