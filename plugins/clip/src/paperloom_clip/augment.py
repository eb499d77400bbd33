"""Image augmentations and the collate that applies them in the DataLoader workers and tokenizes the captions.

The crop / flip / colour jitter / grayscale parts are applied to the whole batch at once with per-image random
parameters (one `grid_sample`, a few tensor ops), since per-image torchvision calls cost more than the tiny
models' steps; RandAugment is torchvision's (`v2.RandAugment`, per image).

- CLIP: a random resized crop with scale (base_crop_min, 1) (open_clip's training default: (0.9, 1));
- CLIP+DataAug (paper Sec. 3): a stronger crop, flip, colour jitter, grayscale and RandAugment, each configurable;
- SLIP: two more views with the SimCLR recipe (Chen et al. 2020; SLIP's `TwoCropsTransform`): crop scale
  (0.08, 1), colour jitter 0.4/0.4/0.4 with p 0.8, grayscale p 0.2, flip; Gaussian blur p 0.5 only for images of
  64 px or more (SimCLR Appendix B.9 leaves blur out on 32 px CIFAR images).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from .tokenizer import tokenize

GRAY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


class BatchViews:
    """(B, 3, H, W) in [0, 1] -> augmented (B, 3, H, W): RandomResizedCrop(scale=(crop_min, 1), ratio 3/4..4/3),
    horizontal flip (p 0.5), colour jitter (brightness/contrast/saturation factors in [1 - jitter, 1 + jitter],
    with probability jitter_p), grayscale (p), optional blur and RandAugment(n, m)."""

    def __init__(self, crop_min: float = 1.0, flip: bool = False, jitter: float = 0.0, jitter_p: float = 0.0,
                 grayscale_p: float = 0.0, blur_p: float = 0.0, randaugment_n: int = 0, randaugment_m: int = 9) -> None:
        self.crop_min, self.flip, self.jitter, self.jitter_p = crop_min, flip, jitter, jitter_p
        self.grayscale_p, self.blur_p = grayscale_p, blur_p
        self.randaugment = v2.RandAugment(randaugment_n, randaugment_m) if randaugment_n > 0 else None

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        area = torch.empty(b).uniform_(self.crop_min, 1.0)
        ratio = torch.exp(torch.empty(b).uniform_(math.log(3 / 4), math.log(4 / 3)))
        w, h = torch.sqrt(area * ratio).clamp(max=1), torch.sqrt(area / ratio).clamp(max=1)  # fractions of the side
        cx, cy = (torch.rand(b) * (1 - w) + w / 2) * 2 - 1, (torch.rand(b) * (1 - h) + h / 2) * 2 - 1
        sx = w * (torch.where(torch.rand(b) < 0.5, -1.0, 1.0) if self.flip else 1.0)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def colour(self, x: torch.Tensor) -> torch.Tensor:
        b, j = x.shape[0], self.jitter
        on = (torch.rand(b, 1, 1, 1) < self.jitter_p).float()

        def factor() -> torch.Tensor:
            return 1 + on * (torch.empty(b, 1, 1, 1).uniform_(-j, j))

        x = (x * factor()).clamp(0, 1)  # brightness
        mean = (x * GRAY).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        x = ((x - mean) * factor() + mean).clamp(0, 1)  # contrast
        gray = (x * GRAY).sum(1, keepdim=True)
        return ((x - gray) * factor() + gray).clamp(0, 1)  # saturation

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop_min < 1 or self.flip:
            x = self.crop(x) if self.crop_min < 1 else torch.where(torch.rand(x.shape[0], 1, 1, 1) < 0.5,
                                                                    x.flip(-1), x)
        if self.jitter > 0 and self.jitter_p > 0:
            x = self.colour(x)
        if self.grayscale_p > 0:
            gray = (x * GRAY).sum(1, keepdim=True).expand_as(x)
            x = torch.where(torch.rand(x.shape[0], 1, 1, 1) < self.grayscale_p, gray, x)
        if self.blur_p > 0:
            sigma = float(torch.empty(()).uniform_(0.1, 2.0))
            blurred = v2.functional.gaussian_blur(x, [max(3, (x.shape[-1] // 10) | 1)] * 2, [sigma, sigma])
            x = torch.where(torch.rand(x.shape[0], 1, 1, 1) < self.blur_p, blurred, x)
        if self.randaugment is not None:  # torchvision's RandAugment, per image, on uint8
            u8 = (x * 255).round().to(torch.uint8)
            x = torch.stack([self.randaugment(img) for img in u8]).float().div(255)
        return x.contiguous()


def clip_view(size: int, crop_min: float) -> BatchViews | None:
    return BatchViews(crop_min) if crop_min < 1 else None


def strong_view(size: int, aug: Any) -> BatchViews:
    """CLIP+DataAug's augmentation from its config section (config.AugConfig)."""
    return BatchViews(aug.crop_min, aug.flip, aug.jitter, aug.jitter_p, aug.grayscale_p, 0.0, aug.randaugment_n,
                      aug.randaugment_m)


def simclr_view(size: int, crop_min: float = 0.08) -> BatchViews:
    return BatchViews(crop_min, True, 0.4, 0.8, 0.2, 0.5 if size >= 64 else 0.0)


class Collate:
    """Items {"image": (3, H, W) float, "text": str} -> {"image", "input_ids", "attention_mask"[, "view1",
    "view2"]}: `view` transforms the images CLIP sees, `ssl_view` (SLIP) makes two more views."""

    def __init__(self, tokenizer: Any, context_length: int, view: Any = None, ssl_view: Any = None) -> None:
        self.tokenizer, self.context_length, self.view, self.ssl_view = tokenizer, context_length, view, ssl_view

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        images = torch.stack([it["image"] for it in items])
        batch = tokenize(self.tokenizer, [it["text"] for it in items], self.context_length)
        batch["image"] = self.view(images) if self.view is not None else images
        if self.ssl_view is not None:
            batch["view1"], batch["view2"] = self.ssl_view(images), self.ssl_view(images)
        return batch
