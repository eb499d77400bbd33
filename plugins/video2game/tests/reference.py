"""Plain reference implementations of the paper's equations, written for clarity (loops, one case at a time)."""

from __future__ import annotations

import math

import numpy as np
import torch

PRIMES = (1, 2654435761, 805459861)


def contract_point(x: np.ndarray) -> np.ndarray:
    """One point: x if |x|_inf <= 1 else (2 - 1/|x|_inf) x / |x|_inf."""
    n = np.abs(x).max()
    return x if n <= 1 else (2 - 1 / n) * x / n


def hash_encode(u: torch.Tensor, table: torch.Tensor, levels: int, features: int, log2_table: int, base_res: int,
                max_res: int) -> torch.Tensor:
    """Instant-NGP encoding level by level: the 8 corners of the cell, each looked up (dense index or Eq. 4 hash),
    interpolated along x, then y, then z (trilinear as three lerps)."""
    t = 2**log2_table
    b = math.exp((math.log(max_res) - math.log(base_res)) / (levels - 1)) if levels > 1 else 1.0
    out, offset = [], 0
    for level in range(levels):
        r = int(math.floor(base_res * b**level))
        size = min(t, (r + 1) ** 3)
        pos = u.clamp(0, 1) * r
        p0 = torch.minimum(pos.floor(), torch.tensor(float(r - 1)))
        w = pos - p0
        p0 = p0.long()

        def look(dx, dy, dz, p0=p0, r=r, offset=offset, size=size):
            x, y, z = p0[:, 0] + dx, p0[:, 1] + dy, p0[:, 2] + dz
            if (r + 1) ** 3 <= t:
                idx = x + y * (r + 1) + z * (r + 1) ** 2
            else:
                idx = ((x * PRIMES[0]) ^ (y * PRIMES[1]) ^ (z * PRIMES[2])) % t
            return table[offset + idx % size]

        def lerp(a, c, s):
            return a * (1 - s[:, None]) + c * s[:, None]

        c00 = lerp(look(0, 0, 0), look(1, 0, 0), w[:, 0])
        c10 = lerp(look(0, 1, 0), look(1, 1, 0), w[:, 0])
        c01 = lerp(look(0, 0, 1), look(1, 0, 1), w[:, 0])
        c11 = lerp(look(0, 1, 1), look(1, 1, 1), w[:, 0])
        out.append(lerp(lerp(c00, c10, w[:, 1]), lerp(c01, c11, w[:, 1]), w[:, 2]))
        offset += size
    return torch.cat(out, -1)


def composite(sigma: np.ndarray, rgb: np.ndarray, dt: np.ndarray, t: np.ndarray) -> tuple:
    """NeRF Eq. 3 for one ray, sample by sample: T_i = prod_{j<i} (1 - alpha_j), w_i = T_i alpha_i."""
    trans, color, depth, opacity = 1.0, np.zeros(3), 0.0, 0.0
    for s, c, d, ti in zip(sigma, rgb, dt, t):
        alpha = 1 - math.exp(-s * d)
        w = trans * alpha
        color += w * c
        depth += w * ti
        opacity += w
        trans *= 1 - alpha
    return color, depth, opacity


def distortion(w: np.ndarray, s: np.ndarray, ds: np.ndarray) -> float:
    """mip-NeRF 360 Eq. 15 as written: the double sum plus the self term."""
    n = len(w)
    pair = sum(w[i] * w[j] * abs(s[i] - s[j]) for i in range(n) for j in range(n))
    return pair + sum(w[i] ** 2 * ds[i] for i in range(n)) / 3


def bilinear(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Texture lookup as a GPU does it (LINEAR, CLAMP_TO_EDGE): texel centres at (i + 0.5) / S, row = v."""
    s = tex.shape[0]
    x, y = uv[:, 0] * s - 0.5, uv[:, 1] * s - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    out = np.zeros((len(uv), tex.shape[2]))
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = np.clip(x0 + dx, 0, s - 1), np.clip(y0 + dy, 0, s - 1)
            wgt = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
            out += wgt[:, None] * tex[yi, xi]
    return out
