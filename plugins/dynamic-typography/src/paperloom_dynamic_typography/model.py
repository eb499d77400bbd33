"""The base field and the motion field of Dynamic Typography (Liu et al., arXiv 2404.11614, Sec. 4.1-4.2).

Both are coordinate MLPs over the letter's control points P (N, 2):

- base field: frequency-encoded (x, y) + a learned per-point embedding -> per-point features -> one MLP over the
  flattened features -> a displacement to the canonical *base shape* B = P + dB (shared by every frame);
- motion field: frequency-encoded (x, y, t) of the base shape's points for every frame t, with coarse-to-fine
  annealing of the frequency bands, + a per-(frame, point) embedding -> local displacements dL (F, N, 2), and a
  per-frame global affine (scale, shear, rotation, translation, each scaled by the reference's weight) about the
  base shape's center. Frame f = B + dL_f + (A_f (B - c) + t_f - (B - c)).

Layer sizes follow the reference (zliucz/animate-your-word, `PointStylization`, `PointModel`); see configs/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FieldsConfig:
    n_points: int = 100  # control points of the letter
    n_frames: int = 24  # frames of the animation (the base shape is frame F + 1, canonical)
    inter_dim: int = 128
    embed_dim: int = 32  # motion field embedding; the base field uses half (as the reference)
    multires: int = 6  # frequency bands 2^linspace(0, 9, 6)
    anneal: bool = True  # coarse-to-fine frequency annealing of the motion field
    anneal_begin: int = 250  # step where the bands start opening (reference: num_iter / 4)
    anneal_steps: int = 500  # steps until all bands are open (reference: num_iter / 2)
    rotation_weight: float = 0.01
    scale_weight: float = 0.05
    shear_weight: float = 0.1
    translation_weight: float = 2.0
    local_weight: float = 1.0


class FrequencyEncoding(nn.Module):
    """sin/cos(2^k x) for k in linspace(0, 9, multires) (NeRF-style, as the reference), with optional annealing:
    band j is weighted by (1 - cos(pi * clamp(alpha - j, 0, 1))) / 2, alpha = multires * (step - begin) / steps."""

    def __init__(self, multires: int, anneal: bool = False, begin: int = 0, steps: int = 1):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.linspace(0, 9, multires), persistent=False)
        self.multires, self.anneal, self.begin, self.steps = multires, anneal, begin, max(1, steps)

    def band_weights(self, step: int) -> torch.Tensor:
        if not self.anneal:
            return torch.ones(self.multires)
        alpha = self.multires * max(0, step - self.begin) / self.steps
        j = torch.arange(self.multires, dtype=torch.float32)
        return (1 - torch.cos(math.pi * (alpha - j).clamp(0, 1))) / 2

    def forward(self, x: torch.Tensor, step: int = 0) -> torch.Tensor:  # (..., D) -> (..., D + 2 * D * multires)
        xf = x[..., None, :] * self.freqs[:, None]  # (..., M, D)
        w = self.band_weights(step).to(x)[:, None]
        enc = torch.cat([torch.sin(xf) * w, torch.cos(xf) * w], -1)  # (..., M, 2D)
        return torch.cat([x, enc.flatten(-2)], -1)


def mlp(dims: list[int], final_norm: bool = False) -> nn.Sequential:
    """Linear -> LayerNorm -> LeakyReLU blocks, the last Linear bare (the reference's pattern)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or final_norm:
            layers += [nn.LayerNorm(b), nn.LeakyReLU()]
    return nn.Sequential(*layers)


def normalize(points: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] (the reference's normalize_tensor then (1 + x) / 2)."""
    lo, hi = points.amin(), points.amax()
    return (points - lo) / (hi - lo).clamp_min(1e-8)


class BaseField(nn.Module):
    """dB = MLP(flatten(project([P, enc(P), emb]))): the displacement from the glyph to the base shape."""

    def __init__(self, cfg: FieldsConfig):
        super().__init__()
        n, d, e = cfg.n_points, cfg.inter_dim, cfg.embed_dim // 2
        self.enc = FrequencyEncoding(cfg.multires)
        self.embedding = nn.Embedding(n, e)
        self.project = mlp([2 + 4 * cfg.multires + e, d], final_norm=True)
        self.head = mlp([n * d, d, d, d, 2 * n])
        self.scale = math.sqrt(e)

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # (N, 2) canvas -> (N, 2) displacement
        n = points.shape[0]
        feats = torch.cat([self.enc(normalize(points)), self.embedding.weight * self.scale], -1)
        return self.head(self.project(feats).reshape(1, -1)).reshape(n, 2)


class MotionField(nn.Module):
    """Local per-(frame, point) displacements and a per-frame global affine, from the base shape's points."""

    def __init__(self, cfg: FieldsConfig):
        super().__init__()
        self.cfg = cfg
        n, f, d, e = cfg.n_points, cfg.n_frames, cfg.inter_dim, cfg.embed_dim
        self.enc = FrequencyEncoding(cfg.multires, cfg.anneal, cfg.anneal_begin, cfg.anneal_steps)
        self.embedding = nn.Embedding(n * f, e)
        self.project = mlp([3 + 6 * cfg.multires + e, d, d])
        self.local = mlp([n * f * d, d, d, 2 * n * f])
        self.shared = mlp([n * f * d, d, d], final_norm=True)
        self.translation = mlp([d, d, d, d, 2 * f])
        self.rotation = mlp([d, d, f])
        self.shear = mlp([d, d, 2 * f])
        self.scale_head = mlp([d, d, 2 * f])
        self.scale = math.sqrt(e)

    def global_affine(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F, 2, 2) matrices R(theta) @ [[1, sh_y], [sh_x, 1]] @ diag(s_x, s_y) and (F, 2) translations."""
        c, f = self.cfg, self.cfg.n_frames
        theta = self.rotation(h).reshape(f) * c.rotation_weight
        shx, shy = (self.shear(h).reshape(f, 2) * c.shear_weight).unbind(-1)
        sx, sy = (1 + self.scale_head(h).reshape(f, 2) * c.scale_weight).unbind(-1)
        cos, sin = torch.cos(theta), torch.sin(theta)
        m = torch.stack([torch.stack([sx * (cos - sin * shx), sy * (cos * shy - sin)], -1),
                         torch.stack([sx * (sin + cos * shx), sy * (sin * shy + cos)], -1)], -2)
        return m, self.translation(h).reshape(f, 2) * c.translation_weight

    def forward(self, base: torch.Tensor, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """base (N, 2) -> local (F, N, 2), global (F, N, 2) displacements."""
        n, f = base.shape[0], self.cfg.n_frames
        centered = base - base.mean(0).detach()
        t = (torch.arange(1, f + 1, dtype=base.dtype, device=base.device) / f)[:, None, None].expand(f, n, 1)
        xyt = torch.cat([normalize(centered)[None].expand(f, n, 2), t], -1)  # (F, N, 3)
        feats = torch.cat([self.enc(xyt, step).reshape(f * n, -1), self.embedding.weight * self.scale], -1)
        h = self.project(feats).reshape(1, -1)
        local = self.local(h).reshape(f, n, 2) * self.cfg.local_weight
        m, tr = self.global_affine(self.shared(h))
        glob = torch.einsum("fij,nj->fni", m, centered) + tr[:, None] - centered[None]
        return local, glob


class TypographyFields(nn.Module):
    """The letter's animation as (base shape, frames): the model the `animate` task optimizes.

    The heads' last layers start at zero, so the untrained model gives base = glyph and frames = base (the
    reference starts from random small outputs; zero makes the invariants exact and the start legible)."""

    def __init__(self, cfg: FieldsConfig, zero_init: bool = True):
        super().__init__()
        self.config = cfg
        self.base_field = BaseField(cfg)
        self.motion_field = MotionField(cfg)
        if zero_init:
            for head in (self.base_field.head, self.motion_field.local, self.motion_field.translation,
                         self.motion_field.rotation, self.motion_field.shear, self.motion_field.scale_head):
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)

    def forward(self, glyph: torch.Tensor, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """glyph (N, 2) -> base (N, 2), frames (F, N, 2)."""
        base = glyph + self.base_field(glyph)
        local, glob = self.motion_field(base, step)
        return base, base[None] + local + glob

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """The reference's three optimizers: base ("stylize"), local ("points", with the shared encoders) and
        global (the affine heads)."""
        m = self.motion_field
        glob = [p for mod in (m.shared, m.translation, m.rotation, m.shear, m.scale_head) for p in mod.parameters()]
        ids = {id(p) for p in glob}
        return {"base": list(self.base_field.parameters()),
                "local": [p for p in m.parameters() if id(p) not in ids], "global": glob}
