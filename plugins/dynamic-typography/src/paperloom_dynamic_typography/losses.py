"""Dynamic Typography's losses besides the guidance (arXiv 2404.11614, Sec. 4.3-4.4).

- legibility: perceptual distance between the base shape's rendering and the original letter's (LPIPS, as the
  paper, when `lpips` and its VGG weights are on disk; else ``1 - SSIM``, reported as "ssim-proxy");
- structure preservation: a Delaunay triangulation of the control points, kept where the triangle lies inside
  the glyph, and the MSE of the triangles' angles to those of the original letter (conformal loss, Eq. 4);
- transition: the same angle MSE between consecutive frames, on the base shape's triangulation (Eq. 5).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .raster import polygon_edges


def inside_glyph(queries: np.ndarray, points: np.ndarray, sizes: list[int], fill_rule: str = "nonzero") -> np.ndarray:
    """Winding-number inside test of query points (Q, 2) against the glyph's closed cubic paths (holes kept)."""
    a, b = (t[0].numpy().astype(np.float64) for t in polygon_edges(torch.tensor(points, dtype=torch.float64)[None],
                                                                    sizes, samples=8, edge_len=None))
    q = queries[:, None]
    cross = (b - a)[None, :, 0] * (q[..., 1] - a[None, :, 1]) - (b - a)[None, :, 1] * (q[..., 0] - a[None, :, 0])
    up = (a[None, :, 1] <= q[..., 1]) & (b[None, :, 1] > q[..., 1]) & (cross > 0)
    down = (b[None, :, 1] <= q[..., 1]) & (a[None, :, 1] > q[..., 1]) & (cross < 0)
    wind = up.sum(1) - down.sum(1)
    return wind != 0 if fill_rule == "nonzero" else wind % 2 != 0


def interior_triangles(points: np.ndarray, sizes: list[int], fill_rule: str = "nonzero") -> np.ndarray:
    """Delaunay triangles (T, 3) of the control points whose centroid lies inside the glyph."""
    from scipy.spatial import Delaunay

    faces = Delaunay(points).simplices
    keep = inside_glyph(points[faces].mean(1), points, sizes, fill_rule)
    return faces[keep]


def triangle_angles(points: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(..., N, 2), (T, 3) -> (..., T, 3) corner angles; edges normalized by (length + 0.1) as the reference."""
    tri = points[..., faces, :]  # (..., T, 3, 2)
    edges = torch.roll(tri, 1, -2) - tri
    edges = edges / (edges.norm(dim=-1, keepdim=True) + 0.1)
    cos = (edges * torch.roll(edges, 1, -2)).sum(-1)
    return torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6))


class ConformalLoss:
    """Angle-preservation of the glyph's interior triangulation (Eq. 4) and between frames (Eq. 5)."""

    def __init__(self, glyph: np.ndarray, sizes: list[int], fill_rule: str = "nonzero"):
        self.sizes, self.fill_rule = sizes, fill_rule
        self.faces = torch.from_numpy(interior_triangles(glyph, sizes, fill_rule)).long()
        self.angles = triangle_angles(torch.tensor(glyph, dtype=torch.float32), self.faces)

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """MSE of the angles of `points` (N, 2) or (F, N, 2) to the glyph's (0 for the glyph itself)."""
        ang = triangle_angles(points, self.faces)
        return F.mse_loss(ang, self.angles.to(ang).expand_as(ang))

    def transition(self, frames: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Mean over consecutive pairs of [frames..., base] of the angle MSE, on the base's triangulation."""
        faces = torch.from_numpy(interior_triangles(base.detach().cpu().double().numpy(), self.sizes,
                                                    self.fill_rule)).long()
        seq = torch.cat([frames, base[None]], 0)
        ang = triangle_angles(seq, faces)
        return F.mse_loss(ang[:-1], ang[1:].detach())


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (g / g.sum())[:, None] * (g / g.sum())[None]


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5) of grayscale images (B, H, W) in [0, 1]."""
    w = _gaussian().to(x)[None, None]
    x, y = x[:, None], y[:, None]
    mx, my = F.conv2d(x, w, padding=5), F.conv2d(y, w, padding=5)
    sxx = F.conv2d(x * x, w, padding=5) - mx ** 2
    syy = F.conv2d(y * y, w, padding=5) - my ** 2
    sxy = F.conv2d(x * y, w, padding=5) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def lpips_available() -> bool:
    """lpips importable and torchvision's VGG16 weights already in the torch hub cache (nothing downloaded)."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return False
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    return any(hub.glob("vgg16-*.pth"))


class Legibility:
    """Perceptual distance of the base shape's rendering to the original letter's; `name` says which."""

    def __init__(self, target: torch.Tensor, kind: str = "auto"):
        self.target = target.detach()  # (1, H, W) coverage of the original letter
        use_lpips = kind == "lpips" or (kind == "auto" and lpips_available())
        if kind == "lpips" and not lpips_available():
            from paperloom import UserError

            raise UserError("legibility=lpips needs the lpips package and torchvision's VGG16 weights in the "
                            "torch hub cache; install lpips and place the weights, or set legibility=ssim-proxy")
        self.name = "lpips" if use_lpips else "ssim-proxy"
        if use_lpips:
            import lpips

            self.net = lpips.LPIPS(net="vgg", verbose=False).eval()
            for p in self.net.parameters():
                p.requires_grad_(False)

    def __call__(self, cov: torch.Tensor) -> torch.Tensor:
        if self.name == "lpips":
            img = lambda c: (1 - c)[:, None].expand(-1, 3, -1, -1) * 2 - 1  # noqa: E731
            return self.net(img(cov), img(self.target.to(cov))).mean()
        return 1 - ssim(cov, self.target.to(cov).expand_as(cov)).mean()


def cos_schedule(step: int, num_iter: int, rate: float, base: float, decay: bool = True) -> float:
    """The reference's legibility weight schedule (peaks at num_iter / 2; without decay it stays there)."""
    if step > num_iter / 2 and not decay:
        return rate + base
    return rate / 2 * (1 + math.cos(2 * math.pi * (step - num_iter / 2) / num_iter)) + base


def linear_schedule(step: int, num_iter: int, change_point: int, rate: float, base: float) -> float:
    """The reference's "hard" schedule: base -> rate until change_point, then rate -> 2 rate."""
    if step <= change_point:
        return (rate - base) / change_point * step + base
    return rate / (num_iter - change_point) * (step - change_point) + rate
