"""CEMA: the complex exponential moving average of Megalodon (arXiv 2404.08801, §3.1).

Per feature d and state n (N complex states per feature):

    p = sigmoid(alpha)                                            (D, N), real
    q = (1 - sigmoid(alpha) * sigmoid(delta)) * exp(i * theta_n)  (D, N), complex, |q| <= 1
    theta_n = n * sigmoid(theta_d) * 2*pi / N,  n = 1..N          (one raw theta per feature)
    h_t = p * x_t + q * h_{t-1}                                   (§3.1, the CEMA recurrence)
    y_t = Re(sum_n eta_n h_{t,n}) + omega * x_t                   eta scaled by 1/sqrt(N)

Unrolled, y is a causal convolution of x with the kernel K[j] = Re(sum_n p_n eta_n q_n^j) (computed
here with an FFT, O(L log L)) plus the contribution Re(sum_n eta_n q_n^{t+1} h_{-1,n}) of a carried
state h_{-1}, which makes chunked / streamed evaluation equal to evaluating the whole sequence.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .kernels import backend_for, triton_cema


def _real(t: torch.Tensor) -> torch.Tensor:
    """float32 unless already float64 (references and tests run in float64)."""
    return t if t.dtype == torch.float64 else t.float()


def cema_coeffs(alpha: torch.Tensor, delta: torch.Tensor, theta: torch.Tensor, eta: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p (D,N) real, q (D,N) complex, eta (D,N) complex scaled by 1/sqrt(N)) from the raw parameters."""
    ndim = alpha.shape[-1]
    a, d = torch.sigmoid(_real(alpha)), torch.sigmoid(_real(delta))
    wavelets = torch.arange(1, ndim + 1, dtype=a.dtype, device=alpha.device)  # n = 1..N
    phase = wavelets * torch.sigmoid(_real(theta)).unsqueeze(-1) * (2 * math.pi / ndim)  # (D, N)
    q = torch.polar(1.0 - a * d, phase)
    return a, q, torch.view_as_complex(_real(eta).contiguous()) / math.sqrt(ndim)


def _powers(q: torch.Tensor, length: int, start: int = 0, step: int = 1) -> torch.Tensor:
    """q^j for j = start, start+step, ... (length values) -> (D, N, length) complex, via exp(j log q)."""
    j = start + step * torch.arange(length, dtype=q.real.dtype, device=q.device)
    log_mag = torch.log(q.abs().clamp_min(1e-30)).unsqueeze(-1)
    return torch.polar(torch.exp(log_mag * j), q.angle().unsqueeze(-1) * j)


def vandermonde_sum(coef: torch.Tensor, q: torch.Tensor, length: int) -> torch.Tensor:
    """Re(sum_n coef[..., d, n] * q[d, n]^j) for j < length -> (..., D, length) real.

    Never builds the (D, N, L) table: with j = k*B + r (B ~ sqrt(L)) it multiplies coef * q^(kB)
    (..., D, L/B, N) by q^r (D, N, B) in one batched complex matmul; both factors come from exp(j log q)
    directly, so there is no error accumulation.
    """
    block = max(1, math.isqrt(max(length - 1, 0)) + 1)
    nb = -(-length // block)
    inner = _powers(q, block)  # (D, N, B): q^r
    outer = _powers(q, nb, step=block)  # (D, N, nb): q^(kB)
    a = coef.unsqueeze(-1) * outer  # (..., D, N, nb)
    lead = a.shape[:-3]
    dim, ndim = q.shape
    a = a.reshape(-1, dim, ndim, nb).permute(1, 0, 3, 2).reshape(dim, -1, ndim)  # (D, (...)*nb, N)
    out = torch.bmm(a, inner).real  # (D, (...)*nb, B)
    out = out.reshape(dim, -1, nb * block)[..., :length].permute(1, 0, 2)  # ((...), D, L)
    return out.reshape(*lead, dim, length)


def cema_kernel(p: torch.Tensor, q: torch.Tensor, eta: torch.Tensor, length: int) -> torch.Tensor:
    """K[d, j] = Re(sum_n p eta q^j), j < length -> (D, length) real."""
    return vandermonde_sum(p * eta, q, length)


def cema_fft(x: torch.Tensor, p: torch.Tensor, q: torch.Tensor, eta: torch.Tensor, omega: torch.Tensor,
             h0: torch.Tensor | None = None, need_state: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """FFT-convolution CEMA. x (B, L, D) -> y (B, L, D), last state (B, D, N) complex (or None)."""
    bsz, length, _ = x.shape
    xf = x.to(p.dtype).transpose(1, 2)  # (B, D, L)
    k = cema_kernel(p, q, eta, length)  # (D, L)
    n_fft = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(xf, n=n_fft) * torch.fft.rfft(k, n=n_fft), n=n_fft)[..., :length]
    if h0 is not None:  # Re(sum_n eta q^{t+1} h0)
        y = y + vandermonde_sum(h0 * eta * q, q, length)
    y = y + omega.to(p.dtype).unsqueeze(-1) * xf
    h = cema_last_state(xf, p, q, h0) if need_state else None
    return y.transpose(1, 2).to(x.dtype), h


def cema_last_state(xf: torch.Tensor, p: torch.Tensor, q: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """h_{L-1} = sum_j q^{L-1-j} p x_j + q^L h0, for xf (B, D, L) -> (B, D, N) complex (blocked like above)."""
    bsz, dim, length = xf.shape
    block = max(1, math.isqrt(max(length - 1, 0)) + 1)
    nb = -(-length // block)
    xr = torch.nn.functional.pad(xf.flip(-1), (0, nb * block - length)).reshape(bsz, dim, nb, block)
    inner = _powers(q, block)  # (D, N, B): q^r
    outer = _powers(q, nb, step=block)  # (D, N, nb): q^(kB)
    part = torch.einsum("bdkr,dnr->bdkn", xr.to(inner.dtype), inner)  # sum_r q^r x_rev[kB + r]
    h = p * torch.einsum("bdkn,dnk->bdn", part, outer)
    if h0 is not None:
        h = h + h0 * _powers(q, 1, start=length).squeeze(-1)
    return h


def cema_sequential(x: torch.Tensor, p: torch.Tensor, q: torch.Tensor, eta: torch.Tensor, omega: torch.Tensor,
                    h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The CEMA recurrence step by step (the plain reference; also used for short decoding steps)."""
    bsz, length, dim = x.shape
    h = h0 if h0 is not None else torch.zeros(bsz, dim, p.shape[-1], dtype=q.dtype, device=x.device)
    ys = []
    for t in range(length):
        xt = x[:, t].to(p.dtype).unsqueeze(-1)  # (B, D, 1)
        h = p * xt + q * h
        ys.append((h * eta).sum(-1).real + omega * x[:, t])
    return torch.stack(ys, 1).to(x.dtype), h


class ComplexEMA(nn.Module):
    """Multi-dimensional damped complex EMA with the official parameter layout.

    alpha, delta (D, N) raw logits; theta (D,) one raw value per feature; eta (D, N, 2) real/imag parts;
    omega (D,). Initialisation (official code): alpha, delta ~ N(0, 0.2^2); theta so that sigmoid(theta)
    spans log-uniform frequencies in (1/D, 1]; eta real ~ N(0, 1), imag 0; omega ~ truncN(0, 0.25^2, [-1, 1]).
    """

    def __init__(self, dim: int, ndim: int = 16, backend: str = "auto", recompute: bool = False) -> None:
        super().__init__()
        self.dim, self.ndim, self.backend, self.recompute = dim, ndim, backend, recompute
        self.alpha = nn.Parameter(torch.zeros(dim, ndim))
        self.delta = nn.Parameter(torch.zeros(dim, ndim))
        self.theta = nn.Parameter(torch.zeros(dim))
        self.eta = nn.Parameter(torch.zeros(dim, ndim, 2))
        self.omega = nn.Parameter(torch.zeros(dim))

    def coeffs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return cema_coeffs(self.alpha, self.delta, self.theta, self.eta)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None, need_state: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, L, D) -> (y (B, L, D), last state (B, D, N) complex when `need_state` or h0 given)."""
        p, q, eta = self.coeffs()
        if backend_for(self.backend, x) == "triton":
            return triton_cema(x, p, q, eta, self.omega, h0)
        if x.shape[1] <= 4:  # decoding steps: the recurrence is cheaper than building an FFT kernel
            y, h = cema_sequential(x, p, q, eta, _real(self.omega), h0)
            return y, h
        need = need_state or h0 is not None
        if self.recompute and torch.is_grad_enabled():  # store the inputs only; backward reruns the FFT path
            return checkpoint(cema_fft, x, p, q, eta, self.omega, h0, need, use_reentrant=False,
                              preserve_rng_state=False)
        return cema_fft(x, p, q, eta, self.omega, h0, need_state=need)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, ndim={self.ndim}, backend={self.backend}, recompute={self.recompute}"


def init_cema_(module: ComplexEMA, init: object) -> None:
    """Official initialisation, through transformers' init functions (they skip weights loaded from disk)."""
    dim = module.dim
    init.normal_(module.alpha, mean=0.0, std=0.2)
    init.normal_(module.delta, mean=0.0, std=0.2)
    freqs = torch.exp(-torch.arange(1, dim + 1, dtype=torch.float32) * math.log(dim) / max(dim, 1))
    freqs = freqs[torch.randperm(dim)].clamp(1e-4, 1 - 1e-4)
    init.copy_(module.theta, torch.log(freqs / (1 - freqs)))
    eta = torch.zeros(dim, module.ndim, 2)
    eta[..., 0].normal_(0.0, 1.0)
    init.copy_(module.eta, eta)
    init.trunc_normal_(module.omega, mean=0.0, std=0.25, a=-1.0, b=1.0)
