"""NeRF training (Video2Game Sec. 3.1) as a LightningModule: random rays of the training frames, the ray marcher
with the occupancy grid updated every few steps, and the losses of the reference (losses.py):

    L = |C - C_gt|^2 + l_opa (-o log o) + l_dist L_dist (mip-NeRF 360 Eq. 15) + l_depth L_depth + l_normal L_normal

The depth prior is scale-and-shift invariant (mono depth, MiDaS-style, as the reference's depth_mono); the normal
prior compares the rendered analytic normal (-grad sigma) with given normals. Both are used only when the dataset
carries depth / normal maps and their weights are > 0."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import lightning as L
import numpy as np
import torch

from paperloom.training import adamw_config

from .config import NeRFConfig
from .model import NeRFField
from .render import March, distortion_loss, opacity_entropy, render, render_rays, s_space

NERF_DIR = "nerf"


class RayBatches(torch.utils.data.Dataset):
    """Item i: `batch` random ray indices drawn from (seed, i), so a resumed run sees the same batches."""

    def __init__(self, n_rays: int, batch: int, steps: int, seed: int) -> None:
        self.n_rays, self.batch, self.steps, self.seed = n_rays, batch, steps, seed

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return torch.randint(self.n_rays, (self.batch,), generator=g)


def first(batch: list) -> object:
    return batch[0]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(torch.mean((a - b) ** 2))
    return 10 * math.log10(1 / max(mse, 1e-10))


def scale_shift_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """min_{s,b} mean (s pred + b - target)^2, (s, b) by least squares (the reference's compute_scale_and_shift)."""
    a = torch.stack([pred, torch.ones_like(pred)], -1)  # (M, 2)
    sol = torch.linalg.lstsq(a.detach(), target[:, None]).solution  # (2, 1)
    return ((a @ sol).squeeze(-1) - target).pow(2).mean()


class NeRFModule(L.LightningModule):
    def __init__(self, field: NeRFField, march: March, optim, total_steps: int, rays: dict, val_views: list,
                 weights: dict, grid_every: int, grid_warmup: int, grid_threshold: float, grid_decay: float,
                 seed: int = 0) -> None:
        super().__init__()
        self.field, self.march, self.optim_cfg, self.total_steps = field, march, optim, total_steps
        self.rays, self.val_views, self.w = rays, val_views, weights
        self.grid_every, self.grid_warmup, self.grid_decay, self.seed = grid_every, grid_warmup, grid_decay, seed
        self.sigma_threshold = grid_threshold
        self.occupied = 1.0

    def configure_optimizers(self):
        return adamw_config(self.field, self.optim_cfg, self.total_steps)

    def update_grid(self, step: int) -> None:
        g = torch.Generator().manual_seed(self.seed * 7919 + step)
        self.occupied = self.field.grid.update(self.field.density, self.sigma_threshold, self.grid_decay, generator=g)

    def training_step(self, idx: torch.Tensor, batch_idx: int) -> torch.Tensor:
        step = self.global_step
        if step >= self.grid_warmup and step % self.grid_every == 0:
            self.update_grid(step)
        o, d, rgb = self.rays["o"][idx], self.rays["d"][idx], self.rays["rgb"][idx]
        jitter = torch.rand(len(idx), 1, generator=torch.Generator().manual_seed(self.seed + 31 * step)).to(o)
        need_w = self.w["distortion"] > 0
        want_n = self.w["normal"] > 0 and "normal" in self.rays
        out = render(self.field, o, d, self.march, jitter=jitter, weights=need_w, normals=want_n)
        if out["samples"] == 0:  # every sample in empty cells: nothing to learn from this batch
            return None
        loss_rgb = (out["rgb"] - rgb).pow(2).mean()
        loss = loss_rgb + self.w["opacity"] * opacity_entropy(out["opacity"]).mean()
        logs = {"train_loss_rgb": loss_rgb, "train_psnr": -10 * torch.log10(loss_rgb.detach().clamp_min(1e-10)),
                "train_occupied": torch.tensor(self.occupied), "train_samples_per_ray": torch.tensor(
                    out["samples"] / len(idx))}
        if need_w:
            s = s_space(out["t"], self.march)
            ds = s_space(out["t"] + out["dt"], self.march) - s
            dist = distortion_loss(out["weights"], s, ds).mean()
            loss = loss + self.w["distortion"] * dist
            logs["train_distortion"] = dist
        if self.w["depth"] > 0 and "depth" in self.rays:
            target = self.rays["depth"][idx]
            ok = torch.isfinite(target) & (out["opacity"].detach() > 0.5)
            if ok.sum() > 8:
                loss = loss + self.w["depth"] * scale_shift_l2(out["depth"][ok], target[ok])
        if want_n:
            target = self.rays["normal"][idx]
            ok = target.norm(dim=-1) > 0.5
            if ok.any():
                n = torch.nn.functional.normalize(out["normal"][ok], dim=-1)
                t_n = target[ok]
                loss = loss + self.w["normal"] * ((n - t_n).abs().sum(-1) + (1 - (n * t_n).sum(-1))).mean()
        logs["train_loss"] = loss
        self.log_dict(logs, on_step=True, prog_bar=False)
        return loss

    def validation_step(self, view: int, batch_idx: int) -> None:
        o, d, rgb = self.val_views[view]
        pred = render_rays(self.field, o, d, self.march)["rgb"]
        self.log("val_psnr", psnr(pred, rgb), on_epoch=True, batch_size=1)


def field_from_config(cfg: dict) -> NeRFField:
    return NeRFField(NeRFConfig(**cfg))


def save_nerf(folder: Path, field: NeRFField, march: March, extra: dict | None = None) -> Path:
    """nerf/model.safetensors (weights + occupancy grid) and nerf/nerf.json (how to rebuild and march it)."""
    from safetensors.torch import save_file

    from paperloom.io import atomic_write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in field.state_dict().items()}
    tmp = folder / ".model.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(folder / "model.safetensors")
    atomic_write_json(folder / "nerf.json", {"format": "paperloom-video2game-nerf/1", "field": asdict(field.config),
                                             "march": asdict(march), **(extra or {})})
    return folder


def load_nerf(folder: Path, device: str = "cpu") -> tuple[NeRFField, March, dict]:
    from paperloom import UserError
    from paperloom.checkpoint import load_safetensors
    from paperloom.io import read_json

    folder = Path(folder)
    if not (folder / "nerf.json").is_file():
        raise UserError(f"{folder}: no nerf.json; pass the run folder of video2game:fit (or its nerf/ folder)")
    meta = read_json(folder / "nerf.json")
    field = field_from_config(meta["field"])
    state = load_safetensors(folder / "model.safetensors")
    state["grid.mask"] = state["grid.mask"].bool()
    field.load_state_dict(state)
    return field.to(device).eval(), March(**meta["march"]), meta


def evaluate_views(field, march, frames, idx: list[int], device: str = "cpu") -> tuple[dict, list[np.ndarray]]:
    """PSNR / SSIM of rendered held-out views (mean over views) and the renders (H, W, 3) float in [0, 1]."""
    from skimage.metrics import structural_similarity

    from .data import camera_rays

    renders, ps, ss = [], [], []
    for i in idx:
        o, d = camera_rays(frames.c2w[i], frames.intrinsics[i], frames.height, frames.width)
        pred = render_rays(field, o.to(device), d.to(device), march)["rgb"].cpu().view(frames.height, frames.width, 3)
        gt = torch.from_numpy(frames.images[i].astype(np.float32) / 255)
        ps.append(psnr(pred, gt))
        ss.append(structural_similarity(pred.numpy(), gt.numpy(), channel_axis=2, data_range=1.0))
        renders.append(pred.numpy())
    return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "psnr_per_view": ps}, renders
