"""Triton kernels for Megalodon's two sequential hot paths: the CEMA scan (§3.1) and timestep norm (§3.2).

Both are one pass over time per tile of features, with the recurrent state in registers (memory is
O(B*L*D), never O(L^2) or O(L*D*N)). They compute the forward pass; the backward pass recomputes the
same function with the PyTorch path and differentiates it (gradients are exact, through the outputs and
the returned states; the backward costs a PyTorch forward more). The norm's running count is an int64
in the kernel, as in the official code. `backend_for` picks the path: "auto" uses Triton for CUDA
tensors when Triton is installed and PyTorch otherwise; "triton" forces it (CPU tensors need TRITON_INTERPRET=1, the
Triton interpreter the tests use); "torch" forces the reference path.

Kernels are defined on first use, so TRITON_INTERPRET may be set any time before that.
"""

from __future__ import annotations

import functools

import torch

from paperloom.kernels import HAS_TRITON  # noqa: F401  (re-exported for the tests)
from paperloom.kernels import backend_for as _backend_for


def backend_for(backend: str, x: torch.Tensor) -> str:
    return _backend_for(backend, x, option="kernel_backend")


@functools.cache
def _kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def cema_scan(x_ptr, p_ptr, qr_ptr, qi_ptr, er_ptr, ei_ptr, om_ptr, h0r_ptr, h0i_ptr, y_ptr, hr_ptr, hi_ptr,
                  L, D, N, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
        # one program: batch row b, features d0..d0+BLOCK_D, all N complex states; loop over time.
        b = tl.program_id(0)
        offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        md = offs_d < D
        m2 = md[:, None] & (offs_n[None, :] < N)
        dn = offs_d[:, None] * N + offs_n[None, :]
        p = tl.load(p_ptr + dn, mask=m2, other=0.0)
        qr = tl.load(qr_ptr + dn, mask=m2, other=0.0)
        qi = tl.load(qi_ptr + dn, mask=m2, other=0.0)
        er = tl.load(er_ptr + dn, mask=m2, other=0.0)
        ei = tl.load(ei_ptr + dn, mask=m2, other=0.0)
        om = tl.load(om_ptr + offs_d, mask=md, other=0.0)
        hr = tl.load(h0r_ptr + b * D * N + dn, mask=m2, other=0.0)
        hi = tl.load(h0i_ptr + b * D * N + dn, mask=m2, other=0.0)
        for t in range(L):
            xt = tl.load(x_ptr + (b * L + t) * D + offs_d, mask=md, other=0.0)
            # h = p x + q h  (complex multiply written out)
            nr = p * xt[:, None] + qr * hr - qi * hi
            ni = qr * hi + qi * hr
            hr, hi = nr, ni
            y = tl.sum(er * hr - ei * hi, axis=1) + om * xt  # Re(eta h) + omega x
            tl.store(y_ptr + (b * L + t) * D + offs_d, y, mask=md)
        tl.store(hr_ptr + b * D * N + dn, hr, mask=m2)
        tl.store(hi_ptr + b * D * N + dn, hi, mask=m2)

    @triton.jit
    def tsn_scan(x_ptr, w_ptr, b_ptr, mask_ptr, n0_ptr, mu0_ptr, var0_ptr, y_ptr, n_ptr, mu_ptr, var_ptr,
                 L, D, G, S, eps, BLOCK_G: tl.constexpr, BLOCK_S: tl.constexpr):
        # one program: batch row b, groups g0..g0+BLOCK_G (S features each); loop over time.
        b = tl.program_id(0)
        offs_g = tl.program_id(1) * BLOCK_G + tl.arange(0, BLOCK_G)
        offs_s = tl.arange(0, BLOCK_S)
        mg = offs_g < G
        m2 = mg[:, None] & (offs_s[None, :] < S)
        feat = offs_g[:, None] * S + offs_s[None, :]
        gamma = 1.0 + tl.load(w_ptr + feat, mask=m2, other=0.0)
        beta = tl.load(b_ptr + feat, mask=m2, other=0.0)
        n = tl.load(n0_ptr + b)  # int64: the running count stays exact (float32 stops at 2^24)
        mu = tl.load(mu0_ptr + b * G + offs_g, mask=mg, other=0.0)
        var = tl.load(var0_ptr + b * G + offs_g, mask=mg, other=1.0)
        for t in range(L):
            ok = (tl.load(mask_ptr + b * L + t) > 0).to(tl.float32)  # 1.0 valid, 0.0 padded
            x = tl.load(x_ptr + (b * L + t) * D + feat, mask=m2, other=0.0)
            m = tl.sum(x, axis=1) / S
            xc = tl.where(m2, x - m[:, None], 0.0)
            v = tl.sum(xc * xc, axis=1) / S
            n_new = n + (ok > 0).to(tl.int64)
            c = ok / tl.maximum(n_new, 1).to(tl.float32)  # c = 0 on padded steps: the state is unchanged
            d = m - mu
            mu = mu + c * d
            var = (1.0 - c) * var + c * v + c * (1.0 - c) * d * d
            n = n_new
            y = (x - mu[:, None]) / tl.sqrt(var[:, None] + eps) * gamma + beta
            tl.store(y_ptr + (b * L + t) * D + feat, tl.where(ok > 0, y, 0.0), mask=m2)
        tl.store(mu_ptr + b * G + offs_g, mu, mask=mg)
        tl.store(var_ptr + b * G + offs_g, var, mask=mg)
        if tl.program_id(1) == 0:
            tl.store(n_ptr + b, n)

    return cema_scan, tsn_scan


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def cema_scan_forward(x: torch.Tensor, p: torch.Tensor, q: torch.Tensor, eta: torch.Tensor, omega: torch.Tensor,
                      h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the CEMA kernel: x (B, L, D) -> y (B, L, D) float32, last state (B, D, N) complex64."""
    cema_scan, _ = _kernels()
    bsz, length, dim = x.shape
    ndim = p.shape[-1]
    f = functools.partial(torch.Tensor.to, dtype=torch.float32)
    xc = f(x).contiguous()
    if h0 is None:
        h0 = torch.zeros(bsz, dim, ndim, dtype=torch.complex64, device=x.device)
    h0r, h0i = f(h0.real).contiguous(), f(h0.imag).contiguous()
    y = torch.empty(bsz, length, dim, dtype=torch.float32, device=x.device)
    hr, hi = torch.empty_like(h0r), torch.empty_like(h0i)
    block_n = _pow2(ndim)
    block_d = max(1, min(_pow2(dim), max(1, 1024 // block_n)))
    grid = (bsz, -(-dim // block_d))
    cema_scan[grid](xc, f(p).contiguous(), f(q.real).contiguous(), f(q.imag).contiguous(), f(eta.real).contiguous(),
                    f(eta.imag).contiguous(), f(omega).contiguous(), h0r, h0i, y, hr, hi, length, dim, ndim,
                    BLOCK_D=block_d, BLOCK_N=block_n)
    return y, torch.complex(hr, hi)


def tsn_scan_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int, state, mask, eps: float):
    """Launch the timestep-norm kernel: x (B, L, D) -> y (B, L, D) float32, (count, mean, var)."""
    _, tsn_scan = _kernels()
    bsz, length, dim = x.shape
    size = dim // groups
    if state is None:
        n0 = torch.zeros(bsz, dtype=torch.int64, device=x.device)
        mu0 = torch.zeros(bsz, groups, dtype=torch.float32, device=x.device)
        var0 = torch.ones(bsz, groups, dtype=torch.float32, device=x.device)
    else:
        n0 = state[0].to(torch.int64).contiguous()
        mu0, var0 = (s.detach().to(torch.float32).contiguous() for s in state[1:])
    valid = torch.ones(bsz, length, device=x.device) if mask is None else mask.to(torch.float32).contiguous()
    y = torch.empty(bsz, length, dim, dtype=torch.float32, device=x.device)
    n, mu, var = torch.empty_like(n0), torch.empty_like(mu0), torch.empty_like(var0)
    block_s = _pow2(size)
    block_g = max(1, min(_pow2(groups), max(1, 2048 // block_s)))
    grid = (bsz, -(-groups // block_g))
    tsn_scan[grid](x.to(torch.float32).contiguous(), weight.to(torch.float32).contiguous(),
                   bias.to(torch.float32).contiguous(), valid, n0, mu0, var0, y, n, mu, var, length, dim, groups, size,
                   eps, BLOCK_G=block_g, BLOCK_S=block_s)
    return y, (n, mu, var)


def _grads_of(outputs, grads, leaves):
    """autograd.grad of the outputs that received a gradient, w.r.t. the leaves that require one."""
    pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o is not None and o.requires_grad]
    wrt = [t for t in leaves if t is not None and t.requires_grad]
    got = iter(torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True)
               if wrt and pairs else [None] * len(wrt))
    return [next(got) if t is not None and t.requires_grad else None for t in leaves]


class _CEMAFunction(torch.autograd.Function):
    """Triton forward; backward differentiates the PyTorch FFT path (recomputed) for exact gradients,
    through the output y and the returned last state h (training with a state carried across segments)."""

    @staticmethod
    def forward(ctx, x, p, q, eta, omega, h0):
        ctx.set_materialize_grads(False)  # an unused output gets None: no state recomputed for it
        ctx.save_for_backward(x, p, q, eta, omega, h0)
        y, h = cema_scan_forward(x, p, q, eta, omega, h0)
        return y.to(x.dtype), h

    @staticmethod
    def backward(ctx, gy, gh):
        from .cema import cema_fft

        inputs = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(t.requires_grad) if t is not None else None for t in inputs]
            y, h = cema_fft(*leaves, need_state=gh is not None)
            return tuple(_grads_of((y, h), (gy, gh), leaves))


class _TSNFunction(torch.autograd.Function):
    """Triton forward; backward differentiates the PyTorch cumulative path (recomputed), through y and the
    returned mean / variance (the count is an integer and carries no gradient)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mu0, var0, n0, mask, groups, eps):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight, bias, mu0, var0, n0, mask)
        ctx.groups, ctx.eps = groups, eps
        state = None if n0 is None else (n0, mu0, var0)
        y, (n, mu, var) = tsn_scan_forward(x, weight, bias, groups, state, mask, eps)
        ctx.mark_non_differentiable(n)
        return y.to(x.dtype), n, mu, var

    @staticmethod
    def backward(ctx, gy, _gn, gmu, gvar):
        from .timestep_norm import timestep_norm_cumulative

        x, weight, bias, mu0, var0, n0, mask = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(t.requires_grad) if t is not None else None
                      for t in (x, weight, bias, mu0, var0)]
            state = None if n0 is None else (n0, leaves[3], leaves[4])
            y, (_, mu, var) = timestep_norm_cumulative(leaves[0], leaves[1], leaves[2], ctx.groups, state, mask,
                                                       ctx.eps)
            out = _grads_of((y, mu, var), (gy, gmu, gvar), leaves)
        return (*out, None, None, None, None)


def triton_cema(x, p, q, eta, omega, h0=None):
    return _CEMAFunction.apply(x, p, q, eta, omega, h0)


def triton_timestep_norm(x, weight, bias, groups, state=None, mask=None, eps=1e-5):
    n0, mu0, var0 = state if state is not None else (None, None, None)
    y, n, mu, var = _TSNFunction.apply(x, weight, bias, mu0, var0, n0, mask, groups, eps)
    return y, (n, mu, var)
