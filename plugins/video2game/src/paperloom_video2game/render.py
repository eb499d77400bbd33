"""Volume rendering by ray marching (Video2Game Sec. 3.1, as Instant-NGP Sec. 4): samples along each ray with the
step dt = clamp(t * cone, dt_min, dt_max), samples in empty occupancy-grid cells skipped before the network runs,
rays stopped once their transmittance falls under `t_threshold` (early termination); then the quadrature of
NeRF Eq. 3: w_i = T_i (1 - exp(-sigma_i dt_i)), C = sum_i w_i c_i. With ``grid=False, early_stop=False`` it is the
plain dense renderer every sample of which is evaluated."""

from __future__ import annotations

from functools import lru_cache

import torch

from .config import MarchConfig as March
from .model import contract


@lru_cache(maxsize=16)
def _edges(near: float, far: float, dt_min: float, dt_max: float, cone: float) -> tuple[float, ...]:
    t, out = near, [near]
    while t < far:
        t += min(max(t * cone, dt_min), dt_max)
        out.append(min(t, far))
    return tuple(out)


def step_edges(m: March) -> torch.Tensor:
    """Sample interval edges t_0 = near < t_1 < ... <= far shared by every ray (S + 1,)."""
    return torch.tensor(_edges(m.near, m.far, m.dt_min, m.dt_max, m.cone))


def render(field, origins: torch.Tensor, dirs: torch.Tensor, march: March, *, grid: bool = True,
           early_stop: bool = True, jitter: torch.Tensor | None = None, weights: bool = False,
           normals: bool = False) -> dict:
    """origins, dirs (N, 3) world (dirs unit) -> {"rgb" (N, 3), "depth" (N,), "opacity" (N,), "samples": number of
    network evaluations} (+ "weights", "t", "dt" (N, S) when asked, for the distortion loss; + "normal" (N, 3), the
    rendered analytic normal -grad sigma / |grad sigma| (in contracted space, = world inside the unit cube))."""
    n_rays = len(origins)
    edges = step_edges(march).to(origins)
    t0, dt = edges[:-1], edges[1:] - edges[:-1]
    s_total = len(t0)
    u = jitter if jitter is not None else torch.full((n_rays, 1), 0.5, device=origins.device)
    rgb = origins.new_zeros(n_rays, 3)
    depth, opacity, trans = origins.new_zeros(n_rays), origins.new_zeros(n_rays), origins.new_ones(n_rays)
    w_all = origins.new_zeros(n_rays, s_total) if weights else None
    normal = origins.new_zeros(n_rays, 3) if normals else None
    alive = torch.arange(n_rays, device=origins.device)
    evaluated = 0
    for s0 in range(0, s_total, march.chunk):
        if alive.numel() == 0:
            break
        ts, dts = t0[s0:s0 + march.chunk], dt[s0:s0 + march.chunk]
        t = ts + u[alive] * dts  # (n, K)
        d = dirs[alive]
        y = contract(origins[alive, None] + t[..., None] * d[:, None])  # (n, K, 3)
        keep = field.grid.occupied(y) if grid else torch.ones(t.shape, dtype=torch.bool, device=t.device)
        sigma = t.new_zeros(t.shape)
        col = t.new_zeros(*t.shape, 3)
        nrm = t.new_zeros(*t.shape, 3) if normals else None
        if keep.any():
            yk = y[keep].detach().requires_grad_(True) if normals else y[keep]
            s_, c_ = field(yk, d[:, None].expand(-1, t.shape[1], -1)[keep])
            if normals:
                g = torch.autograd.grad(s_.sum(), yk, create_graph=True)[0]
                nrm = nrm.masked_scatter(keep[..., None], -torch.nn.functional.normalize(g, dim=-1))
            sigma = sigma.masked_scatter(keep, s_)
            col = col.masked_scatter(keep[..., None], c_)
            evaluated += int(keep.sum())
        alpha = 1 - torch.exp(-sigma * dts)
        survive = torch.cumprod(torch.cat([alpha.new_ones(len(t), 1), 1 - alpha + 1e-10], 1), 1)
        w = trans[alive, None] * survive[:, :-1] * alpha  # (n, K)
        rgb = rgb.index_add(0, alive, (w[..., None] * col).sum(1))
        depth = depth.index_add(0, alive, (w * t).sum(1))
        opacity = opacity.index_add(0, alive, w.sum(1))
        if normals:
            normal = normal.index_add(0, alive, (w[..., None] * nrm).sum(1))
        t_new = trans[alive] * survive[:, -1]
        trans = trans.index_copy(0, alive, t_new)
        if weights:
            cols = torch.arange(s0, s0 + len(ts), device=t.device)
            w_all = w_all.index_put((alive[:, None], cols[None]), w)
        if early_stop:
            alive = alive[t_new.detach() > march.t_threshold]
    out = {"rgb": rgb, "depth": depth, "opacity": opacity, "samples": evaluated}
    if normals:
        out["normal"] = normal
    if weights:
        out["weights"], out["t"], out["dt"] = w_all, t0 + u * dt, dt.expand(n_rays, -1)
    return out


@torch.no_grad()
def render_rays(field, origins: torch.Tensor, dirs: torch.Tensor, march: March, chunk: int = 8192,
                **kwargs) -> dict:
    """`render` over many rays in chunks, without gradients: {"rgb", "depth", "opacity"} and the sample count."""
    parts = [render(field, origins[i:i + chunk], dirs[i:i + chunk], march, **kwargs)
             for i in range(0, len(origins), chunk)]
    out = {k: torch.cat([p[k] for p in parts]) for k in ("rgb", "depth", "opacity")}
    out["samples"] = sum(p["samples"] for p in parts)
    return out


# --------------------------------------------------------------------------- losses (Video2Game Sec. 3.1)


def s_space(t: torch.Tensor, march: March) -> torch.Tensor:
    """Normalised ray distance for the distortion loss: g(t) = t (t < 1), 2 - 1/t beyond (the contraction along a
    ray from the scene centre, mip-NeRF 360 Sec. 4), mapped to [0, 1] over [near, far]."""
    def g(x):
        return torch.where(x < 1, x, 2 - 1 / x.clamp_min(1e-6))

    lo, hi = g(torch.tensor(march.near)), g(torch.tensor(march.far))
    return (g(t) - lo) / (hi - lo)


def distortion_loss(w: torch.Tensor, s: torch.Tensor, ds: torch.Tensor) -> torch.Tensor:
    """mip-NeRF 360 Eq. 15 per ray, in O(S): sum_ij w_i w_j |s_i - s_j| + 1/3 sum_i w_i^2 ds_i, s sorted along the
    ray, so the double sum is 2 sum_i w_i (s_i W_<i - (w s)_<i) (DVGO v2's form)."""
    cw = torch.cumsum(w, -1) - w
    cws = torch.cumsum(w * s, -1) - w * s
    return 2 * (w * (s * cw - cws)).sum(-1) + (w * w * ds).sum(-1) / 3


def opacity_entropy(o: torch.Tensor) -> torch.Tensor:
    """-o log o of the accumulated opacity (reference losses.py): pushes rays to be empty or opaque."""
    o = o.clamp(1e-6, 1)
    return -o * torch.log(o)
