"""Triton kernels for the multi-resolution hash encoding (Instant-NGP Sec. 3; model.HashEncoding's torch path).

Forward: one program per (tile of points, level): the cell of each point, the 8 corners' table indices (dense
x + y (N+1) + z (N+1)^2 for levels whose grid fits the table, else the spatial hash of Eq. 4), their features
gathered and trilinearly weighted, all in registers: the torch path materialises (N, L, 8) index and weight
tensors and an (N, L * 8, F) gather instead. Backward into the table (the usual case: the points carry no
gradient) is the transpose: atomic adds of weight * output gradient at the same 8 indices. When the points do
need a gradient (e.g. normals from the density), the backward recomputes the torch path and differentiates it,
so gradients are exact either way. `paperloom.kernels.backend_for` picks the path (`hash_backend`).
"""

from __future__ import annotations

import torch

from paperloom.kernels import HAS_TRITON, backend_for  # noqa: F401  (model.py and the tests use both)

if HAS_TRITON:  # this module is imported on first use (model.HashEncoding.forward), after TRITON_INTERPRET is set
    import triton
    import triton.language as tl

    PRIME_Y = tl.constexpr(2654435761)  # Instant-NGP Eq. 4 (pi_1 = 1); jit code reads only constexpr globals
    PRIME_Z = tl.constexpr(805459861)

    @triton.jit
    def _cell(u_ptr, offs, m, axis: tl.constexpr, rf):
        x = tl.minimum(tl.maximum(tl.load(u_ptr + offs * 3 + axis, mask=m, other=0.0), 0.0), 1.0)
        p = x * rf
        p0 = tl.minimum(tl.floor(p), rf - 1.0)
        return p0.to(tl.int64), p - p0  # the cell's lower corner and the fraction inside it

    @triton.jit
    def _level(u_ptr, res_ptr, size_ptr, off_ptr, dense_ptr, offs, m, lvl):
        """The level's resolution / table size / offset / dense flag and every point's cell and fractions."""
        r = tl.load(res_ptr + lvl)
        rf = r.to(tl.float32)
        x0, fx = _cell(u_ptr, offs, m, 0, rf)
        y0, fy = _cell(u_ptr, offs, m, 1, rf)
        z0, fz = _cell(u_ptr, offs, m, 2, rf)
        return r, x0, y0, z0, fx, fy, fz, tl.load(size_ptr + lvl), tl.load(off_ptr + lvl), tl.load(dense_ptr + lvl)

    @triton.jit
    def _corner(r, x0, y0, z0, fx, fy, fz, size, off, dense, corner: tl.constexpr, T_MASK):
        bx: tl.constexpr = corner & 1
        by: tl.constexpr = (corner >> 1) & 1
        bz: tl.constexpr = (corner >> 2) & 1
        w = (fx * bx + (1.0 - fx) * (1 - bx)) * (fy * by + (1.0 - fy) * (1 - by)) * (fz * bz + (1.0 - fz) * (1 - bz))
        cx, cy, cz = x0 + bx, y0 + by, z0 + bz
        lin = cx + cy * (r + 1) + cz * (r + 1) * (r + 1)
        hashed = (cx ^ (cy * PRIME_Y) ^ (cz * PRIME_Z)) & T_MASK
        return tl.where(dense != 0, lin, hashed) % size + off, w

    @triton.jit
    def _forward(u_ptr, emb_ptr, res_ptr, size_ptr, off_ptr, dense_ptr, out_ptr, N, L, T_MASK,
                 F: tl.constexpr, BLOCK_N: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        lvl = tl.program_id(1)
        m = offs < N
        f = tl.arange(0, F)
        r, x0, y0, z0, fx, fy, fz, size, off, dense = _level(u_ptr, res_ptr, size_ptr, off_ptr, dense_ptr, offs, m, lvl)
        acc = tl.zeros((BLOCK_N, F), tl.float32)
        for corner in tl.static_range(8):
            idx, w = _corner(r, x0, y0, z0, fx, fy, fz, size, off, dense, corner, T_MASK)
            feats = tl.load(emb_ptr + idx[:, None] * F + f[None, :], mask=m[:, None], other=0.0)
            acc += w[:, None] * feats
        tl.store(out_ptr + offs[:, None] * (L * F) + lvl * F + f[None, :], acc, mask=m[:, None])

    @triton.jit
    def _backward_table(u_ptr, g_ptr, res_ptr, size_ptr, off_ptr, dense_ptr, grad_ptr, N, L, T_MASK,
                        F: tl.constexpr, BLOCK_N: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        lvl = tl.program_id(1)
        m = offs < N
        f = tl.arange(0, F)
        r, x0, y0, z0, fx, fy, fz, size, off, dense = _level(u_ptr, res_ptr, size_ptr, off_ptr, dense_ptr, offs, m, lvl)
        g = tl.load(g_ptr + offs[:, None] * (L * F) + lvl * F + f[None, :], mask=m[:, None], other=0.0)
        for corner in tl.static_range(8):
            idx, w = _corner(r, x0, y0, z0, fx, fy, fz, size, off, dense, corner, T_MASK)
            tl.atomic_add(grad_ptr + idx[:, None] * F + f[None, :], w[:, None] * g, mask=m[:, None])


def _launch(kernel, enc, u: torch.Tensor, data: torch.Tensor, out: torch.Tensor, block_n: int) -> None:
    n = len(u)
    grid = (triton.cdiv(n, block_n), enc.levels)
    kernel[grid](u, data, enc.res, enc.sizes, enc.offsets, enc.dense.to(torch.int32), out, n,
                 enc.levels, enc.table - 1, F=enc.features, BLOCK_N=block_n)


class TritonHashEncode(torch.autograd.Function):
    """features = hash_encode(u, table) with the Triton forward and table backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, table: torch.Tensor, enc, block_n: int = 64) -> torch.Tensor:
        u32 = u.detach().float().contiguous()
        out = torch.empty(len(u), enc.levels * enc.features, device=u.device, dtype=torch.float32)
        _launch(_forward, enc, u32, table.detach().float().contiguous(), out, block_n)
        ctx.save_for_backward(u, table)
        ctx.enc, ctx.block_n = enc, block_n
        return out.to(table.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        u, table = ctx.saved_tensors
        if ctx.needs_input_grad[0]:  # the points need a gradient too: differentiate the torch path exactly
            with torch.enable_grad():
                u_, t_ = u.detach().requires_grad_(), table.detach().requires_grad_()
                gu, gt = torch.autograd.grad(ctx.enc.torch_forward(u_, t_), (u_, t_), grad)
            return gu, gt, None, None
        g_table = torch.zeros(table.shape, device=table.device, dtype=torch.float32)
        u32 = u.detach().float().contiguous()
        _launch(_backward_table, ctx.enc, u32, grad.float().contiguous(), g_table, ctx.block_n)
        return None, g_table.to(table.dtype), None, None
