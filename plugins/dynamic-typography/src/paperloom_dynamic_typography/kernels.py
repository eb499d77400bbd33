"""Triton kernel for the rasterizer's non-differentiable half: per sub-pixel, the winding number of the polygon
and the nearest edge (index and distance), all frames in one launch.

The torch path (raster.py) gets these from scanline crossings and a scatter-min over a window around every edge:
many small gathers, scatters and a host sync for `nonzero` per call. On a GPU one fused pass over (pixel tile x
edge chunk) does the same with everything in registers; the differentiable half (the distance of each band
pixel to its nearest edge, through autograd) stays in torch either way, so gradients are the torch path's.

The crossing test is the torch path's: an edge a -> b crosses the +x ray of the sub-pixel centre p when
a_y <= p_y < b_y (+1, going down) or b_y <= p_y < a_y (-1), at x_i = a_x + (p_y - a_y)(b_x - a_x)/(b_y - a_y),
and counts when p_x < x_i. Ties of the nearest distance go to the larger edge index (the torch path's
scatter "amax"). `backend_for` picks the path: "auto" = Triton for CUDA tensors when Triton is installed;
"triton" forces it (CPU tensors need TRITON_INTERPRET=1, the interpreter the tests use); "torch" forces torch.
"""

from __future__ import annotations

import functools

import torch

from paperloom.kernels import HAS_TRITON, backend_for  # noqa: F401  (raster.py and the tests use both)


@functools.cache
def _kernel():  # defined on first use, so TRITON_INTERPRET may be set any time before that
    import triton
    import triton.language as tl

    @triton.jit
    def winding_nearest(ax_ptr, ay_ptr, bx_ptr, by_ptr, wind_ptr, dist_ptr, edge_ptr, E, H, W,
                        BLOCK_P: tl.constexpr, BLOCK_E: tl.constexpr):
        # one program: frame b, sub-pixels p0..p0+BLOCK_P (row-major); loop over the frame's edges in chunks.
        b = tl.program_id(0)
        offs_p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
        mp = offs_p < H * W
        px = (offs_p % W).to(tl.float32) + 0.5
        py = (offs_p // W).to(tl.float32) + 0.5
        wind = tl.zeros((BLOCK_P,), dtype=tl.int32)
        best_d = tl.full((BLOCK_P,), float("inf"), dtype=tl.float32)
        best_e = tl.full((BLOCK_P,), -1, dtype=tl.int32)
        for e0 in range(0, E, BLOCK_E):
            offs_e = e0 + tl.arange(0, BLOCK_E)
            me = offs_e < E
            ax = tl.load(ax_ptr + b * E + offs_e, mask=me, other=0.0)[None, :]
            ay = tl.load(ay_ptr + b * E + offs_e, mask=me, other=0.0)[None, :]
            bx = tl.load(bx_ptr + b * E + offs_e, mask=me, other=0.0)[None, :]
            by = tl.load(by_ptr + b * E + offs_e, mask=me, other=0.0)[None, :]
            pxx, pyy = px[:, None], py[:, None]
            down = (ay <= pyy) & (by > pyy)
            up = (by <= pyy) & (ay > pyy)
            dy = by - ay
            xi = ax + (pyy - ay) * (bx - ax) / tl.where(dy == 0.0, 1.0, dy)
            cross = (down.to(tl.int32) - up.to(tl.int32)) * ((pxx < xi) & me[None, :]).to(tl.int32)
            wind += tl.sum(cross, axis=1)
            abx, aby = bx - ax, by - ay
            apx, apy = pxx - ax, pyy - ay
            t = (apx * abx + apy * aby) / tl.maximum(abx * abx + aby * aby, 1e-12)
            t = tl.minimum(tl.maximum(t, 0.0), 1.0)
            ex, ey = apx - t * abx, apy - t * aby
            d = tl.sqrt(tl.maximum(ex * ex + ey * ey, 1e-12))
            d = tl.where(me[None, :], d, float("inf"))
            chunk_d = tl.min(d, axis=1)
            chunk_e = tl.max(tl.where(d == chunk_d[:, None], offs_e[None, :], -1), axis=1)
            later = chunk_d <= best_d  # a tie with an earlier chunk goes to the larger index, as in torch
            best_e = tl.where(later, chunk_e, best_e)
            best_d = tl.minimum(best_d, chunk_d)
        out = b * H * W + offs_p
        tl.store(wind_ptr + out, wind, mask=mp)
        tl.store(dist_ptr + out, best_d, mask=mp)
        tl.store(edge_ptr + out, best_e, mask=mp)

    return winding_nearest


@torch.no_grad()
def triton_winding_nearest(a: torch.Tensor, b: torch.Tensor, h: int, w: int, block_p: int = 64,
                           block_e: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edges a -> b (B, E, 2) in sub-pixel units -> winding number (B, h, w) int32, nearest-edge distance
    (B, h, w) float32 and its edge index (B, h, w) int64."""
    import triton

    B, E, _ = a.shape
    a, b = a.detach().float(), b.detach().float()
    ax, ay, bx, by = (t.contiguous() for t in (a[..., 0], a[..., 1], b[..., 0], b[..., 1]))
    wind = torch.empty(B, h, w, dtype=torch.int32, device=a.device)
    dist = torch.empty(B, h, w, dtype=torch.float32, device=a.device)
    edge = torch.empty(B, h, w, dtype=torch.int32, device=a.device)
    grid = (B, triton.cdiv(h * w, block_p))
    _kernel()[grid](ax, ay, bx, by, wind, dist, edge, E, h, w, BLOCK_P=block_p, BLOCK_E=block_e)
    return wind, dist, edge.long()
