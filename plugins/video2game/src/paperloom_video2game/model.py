"""The Instant-NGP-style radiance field of Video2Game (Xia et al., CVPR 2024, Sec. 3.1), top to bottom.

- scene contraction: the unbounded world maps into the cube [-2, 2]^3 (inf-norm variant of mip-NeRF 360, Eq. 10);
- a multi-resolution hash encoding of the contracted point (Mueller et al. 2022, Sec. 3);
- a density MLP (density + geometry features) and a colour MLP of (features, SH(view direction));
- an occupancy grid over the contracted cube, updated during training, for empty-space skipping.

Contracted coordinates y in [-2, 2]^3 are what every network and the grid see; `contract` maps world points there.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import NeRFConfig

PRIMES = (1, 2654435761, 805459861)  # Instant-NGP Eq. 4: spatial hash pi_1..pi_3


# --------------------------------------------------------------------------- scene contraction


def contract(x: torch.Tensor) -> torch.Tensor:
    """World -> [-2, 2]^3: identity inside the unit cube, (2 - 1/|x|) x/|x| outside (|.| the inf-norm)."""
    n = x.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    return torch.where(n <= 1, x, (2 - 1 / n) * (x / n))


def uncontract(y: torch.Tensor) -> torch.Tensor:
    """Inverse of `contract` on the open cube (-2, 2)^3: |x| = 1 / (2 - |y|)."""
    n = y.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    m = 1 / (2 - n).clamp_min(1e-6)
    return torch.where(n <= 1, y, y * (m / n))


# --------------------------------------------------------------------------- encodings


class HashEncoding(nn.Module):
    """Multi-resolution hash encoding (Instant-NGP Sec. 3): L levels of resolution N_l = floor(N_min b^l),
    b = exp((ln N_max - ln N_min) / (L - 1)); a level whose (N_l + 1)^3 grid fits in T entries is indexed densely,
    the others by the spatial hash (Eq. 4); features of the 8 cell corners are trilinearly interpolated."""

    def __init__(self, levels: int, features: int, log2_table: int, base_res: int, max_res: int,
                 backend: str = "auto") -> None:
        super().__init__()
        self.backend = backend  # auto: the Triton kernels (kernels.py) for CUDA tensors, torch elsewhere
        table = 2**log2_table
        growth = math.exp((math.log(max_res) - math.log(base_res)) / max(1, levels - 1))
        res = [int(math.floor(base_res * growth**level)) for level in range(levels)]
        sizes = [min(table, (r + 1) ** 3) for r in res]
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        self.levels, self.features, self.table = levels, features, table
        self.register_buffer("res", torch.tensor(res), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets[:-1]), persistent=False)
        self.register_buffer("dense", torch.tensor([(r + 1) ** 3 <= table for r in res]), persistent=False)
        self.embeddings = nn.Parameter(torch.empty(offsets[-1], features).uniform_(-1e-4, 1e-4))  # NGP init

    @property
    def out_dim(self) -> int:
        return self.levels * self.features

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (N, 3) in [0, 1]^3 -> features (N, L * F)."""
        from .kernels import TritonHashEncode, backend_for

        if backend_for(self.backend, u, option="hash_backend") == "triton" and self.features & (self.features - 1) == 0:
            return TritonHashEncode.apply(u, self.embeddings, self)  # F a power of two (tl.arange)
        return self.torch_forward(u, self.embeddings)

    def torch_forward(self, u: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """The reference path (and the CPU one): explicit (N, L, 8) corner indices and weights, one gather."""
        res = self.res.to(u.dtype)  # (L,)
        pos = u.clamp(0, 1)[:, None, :] * res[None, :, None]  # (N, L, 3)
        p0 = torch.minimum(pos.floor(), (res - 1)[None, :, None])
        w = pos - p0  # (N, L, 3) in [0, 1]
        p0 = p0.long()
        # per axis: the two corner coordinates (N, L, 3, 2) and their linear weights
        c = torch.stack([p0, p0 + 1], -1)
        wt = torch.stack([1 - w, w], -1)
        r1 = (self.res + 1).view(1, -1, 1)
        dense = self.dense.view(1, -1, 1, 1, 1)
        # dense levels: x + y (N+1) + z (N+1)^2; hashed: (x pi_1) xor (y pi_2) xor (z pi_3) mod T (Eq. 4)
        cx, cy, cz = c[:, :, 0, :, None, None], c[:, :, 1, None, :, None], c[:, :, 2, None, None, :]
        lin = cx + cy * r1[..., None, None] + cz * (r1 * r1)[..., None, None]
        hashed = ((cx * PRIMES[0]) ^ (cy * PRIMES[1]) ^ (cz * PRIMES[2])) & (self.table - 1)
        idx = torch.where(dense, lin, hashed) % self.sizes.view(1, -1, 1, 1, 1) + self.offsets.view(1, -1, 1, 1, 1)
        weight = wt[:, :, 0, :, None, None] * wt[:, :, 1, None, :, None] * wt[:, :, 2, None, None, :]  # (N,L,2,2,2)
        feats = nn.functional.embedding(idx.view(len(u), -1), embeddings)  # (N, L * 8, F)
        out = (feats.view(len(u), self.levels, 8, self.features) * weight.view(len(u), self.levels, 8, 1)).sum(2)
        return out.flatten(1)


def spherical_harmonics(d: torch.Tensor, degree: int = 4) -> torch.Tensor:
    """Real SH basis of unit directions d (N, 3) up to band degree-1: (N, degree^2), tiny-cuda-nn's ordering."""
    x, y, z = d.unbind(-1)
    out = [torch.full_like(x, 0.28209479177387814)]
    if degree > 1:
        out += [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x]
    if degree > 2:
        x2, y2, z2 = x * x, y * y, z * z
        out += [1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.94617469575755997 * z2 - 0.31539156525251999,
                -1.0925484305920792 * x * z, 0.54627421529603959 * (x2 - y2)]
    if degree > 3:
        out += [0.59004358992664352 * y * (-3 * x2 + y2), 2.8906114426405538 * x * y * z,
                0.45704579946446572 * y * (1 - 5 * z2), 0.3731763325901154 * z * (5 * z2 - 3),
                0.45704579946446572 * x * (1 - 5 * z2), 1.4453057213202769 * z * (x2 - y2),
                0.59004358992664352 * x * (-x2 + 3 * y2)]
    if degree > 4:
        raise ValueError("sh_degree above 4 is not implemented")
    return torch.stack(out, -1)


# --------------------------------------------------------------------------- the field


class NeRFField(nn.Module):
    """sigma(y), rgb(y, d): density from the hash-encoded contracted point (exp activation, NGP Sec. 5.4),
    colour from the geometry features and SH(d)."""

    def __init__(self, cfg: NeRFConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoding = HashEncoding(cfg.levels, cfg.features, cfg.log2_table, cfg.base_res, cfg.max_res,
                                     getattr(cfg, "hash_backend", "auto"))
        self.density_mlp = nn.Sequential(nn.Linear(self.encoding.out_dim, cfg.hidden), nn.ReLU(),
                                         nn.Linear(cfg.hidden, 1 + cfg.geo_features))
        self.color_mlp = nn.Sequential(nn.Linear(cfg.geo_features + cfg.sh_degree**2, cfg.hidden), nn.ReLU(),
                                       nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 3))
        self.grid = OccupancyGrid(cfg.grid_res)

    def _features(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.density_mlp(self.encoding((y + 2) / 4))
        sigma = torch.exp((h[:, 0] + self.config.density_bias).clamp(max=15.0))  # truncated exp: finite gradients
        return sigma, h[:, 1:]

    def density(self, y: torch.Tensor) -> torch.Tensor:
        """y (N, 3) contracted -> sigma (N,)."""
        return self._features(y)[0]

    def forward(self, y: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y (N, 3) contracted, d (N, 3) unit world directions -> sigma (N,), rgb (N, 3) in [0, 1]."""
        sigma, geo = self._features(y)
        rgb = torch.sigmoid(self.color_mlp(torch.cat([geo, spherical_harmonics(d, self.config.sh_degree)], -1)))
        return sigma, rgb


class OccupancyGrid(nn.Module):
    """A R^3 grid over the contracted cube [-2, 2]^3 holding a running density per cell (NGP Sec. 4: decayed max
    of fresh samples) and the occupied mask the ray marcher skips by. Starts fully occupied."""

    def __init__(self, res: int) -> None:
        super().__init__()
        self.res = res
        self.register_buffer("density", torch.zeros(res, res, res))
        self.register_buffer("mask", torch.ones(res, res, res, dtype=torch.bool))

    def cell_of(self, y: torch.Tensor) -> torch.Tensor:
        """Contracted points (..., 3) -> integer cells (..., 3)."""
        return ((y + 2) / 4 * self.res).long().clamp(0, self.res - 1)

    def occupied(self, y: torch.Tensor) -> torch.Tensor:
        c = self.cell_of(y)
        return self.mask[c[..., 0], c[..., 1], c[..., 2]]

    @torch.no_grad()
    def update(self, density_fn, threshold: float, decay: float = 0.95, samples: int = 1,
               generator: torch.Generator | None = None, chunk: int = 1 << 16) -> float:
        """One jittered sample (or `samples`) per cell; density <- max(decay * density, fresh); mask = density >
        min(mean, threshold) (Instant-NGP's rule: early on, when everything is faint, the denser half stays).
        Returns the occupied fraction."""
        r = self.res
        device = self.density.device
        idx = torch.stack(torch.meshgrid(*[torch.arange(r, device=device)] * 3, indexing="ij"), -1).view(-1, 3)
        fresh = torch.zeros(r**3, device=device)
        for _ in range(samples):
            jitter = torch.rand(r**3, 3, generator=generator).to(device)
            y = (idx + jitter) / r * 4 - 2
            vals = torch.cat([density_fn(y[i:i + chunk]) for i in range(0, len(y), chunk)])
            fresh = torch.maximum(fresh, vals)
        self.density.copy_(torch.maximum(self.density * decay, fresh.view(r, r, r)))
        self.mask.copy_(self.density > min(float(self.density.mean()), threshold))
        return float(self.mask.float().mean())
