"""Timestep normalization (arXiv 2404.08801, §3.2; semantics of the official `timestep_norm.py`).

Features are split into G contiguous groups. Each sequence carries a state (count n, group means mu,
group population variances var), by default (0, 0, 1). Every valid timestep t merges its group mean
m_t and within-group population variance v_t into the state:

    n += 1;  c = 1/n;  d = m_t - mu;  mu += c*d;  var = (1-c)*var + c*v_t + c*(1-c)*d^2
    y_t = (x_t - mu) / sqrt(var + eps) * (1 + w) + b          (w, b initialised to 0)

so mu / var are the mean / variance of all features of the sequence up to t (never looking ahead).
Padded steps output 0 and leave the state unchanged; the state carries across chunks and calls.

The PyTorch path computes all timesteps at once with cumulative sums (around a valid-step origin, float64
accumulators, padded steps excluded: see `timestep_norm_cumulative`); the naive
loop above is `timestep_norm_naive` in tests/reference.py, the reference the tests compare with.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .kernels import backend_for, triton_timestep_norm

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # count (B,) int64, mean (B, G), var (B, G)


def initial_state(bsz: int, groups: int, device: torch.device, dtype: torch.dtype = torch.float32) -> State:
    return (torch.zeros(bsz, dtype=torch.long, device=device), torch.zeros(bsz, groups, dtype=dtype, device=device),
            torch.ones(bsz, groups, dtype=dtype, device=device))


def timestep_norm_cumulative(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int,
                             state: State | None = None, mask: torch.Tensor | None = None, eps: float = 1e-5,
                             ) -> tuple[torch.Tensor, State]:
    """x (B, L, D), mask (B, L) of 1 = valid -> (y (B, L, D), new state). Parallel over time.

    Numerics: the per-step group mean / variance are two-pass (in the compute dtype); padded steps are
    removed with `where` from every statistic (their values, however large or non-finite, never enter a
    sum); the running sums are taken around an origin that is the prior mean, or the first *valid* step's
    mean when the prior is empty, and accumulated in float64. The accumulated tensors are (B, L, G), a
    G/D fraction of the activations, so float64 costs little; it keeps E[(x-o)^2] - E[x-o]^2 accurate for
    long, drifting inputs where float32 cumulative sums lose digits.
    """
    bsz, length, dim = x.shape
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if length == 0:
        return x, state if state is not None else initial_state(bsz, groups, x.device, dtype)
    acc = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    xg = x.to(dtype).view(bsz, length, groups, dim // groups)
    m = xg.mean(-1)  # (B, L, G): group mean and within-group population variance (two-pass)
    v = (xg - m.unsqueeze(-1)).square().mean(-1)
    n0, mu0, var0 = state if state is not None else initial_state(bsz, groups, x.device, dtype)
    mu0, var0 = mu0.to(acc), var0.to(acc)
    valid = (torch.ones(bsz, length, dtype=torch.bool, device=x.device) if mask is None
             else mask.to(x.device) > 0)  # (B, L)
    ok = valid.unsqueeze(-1)  # (B, L, 1)
    m64, v64 = m.to(acc), v.to(acc)
    prior = n0.to(acc).unsqueeze(-1)  # (B, 1)
    first = valid.to(torch.float32).argmax(1)  # first valid step (argmax returns the first maximum; 0 when none)
    first_m = m.gather(1, first.view(bsz, 1, 1).expand(bsz, 1, groups)).squeeze(1)  # (B, G)
    # the origin (any constant is exact), a value of the compute dtype so that x - origin loses nothing
    origin = torch.where(prior > 0, mu0.to(dtype), first_m).detach().unsqueeze(1)  # (B, 1, G)
    shift = origin.to(acc)
    dm = torch.where(ok, m64 - shift, 0.0)  # (B, L, G); padded steps contribute exactly nothing
    count = prior + valid.to(acc).cumsum(1)  # (B, L)
    s1 = prior.unsqueeze(1) * (mu0.unsqueeze(1) - shift) + dm.cumsum(1)
    s2 = (prior.unsqueeze(1) * (var0.unsqueeze(1) + (mu0.unsqueeze(1) - shift) ** 2)
          + torch.where(ok, v64 + dm**2, 0.0).cumsum(1))
    n = count.clamp_min(1).unsqueeze(-1)
    mean_c = s1 / n  # mean - origin
    var = (s2 / n - mean_c**2).clamp_min(0)
    # before the first valid step the state is still the prior
    empty = (count == 0).unsqueeze(-1)
    mean_c = torch.where(empty, mu0.unsqueeze(1) - shift, mean_c)
    var = torch.where(empty, var0.unsqueeze(1), var).to(dtype)
    mean = (mean_c + shift).to(dtype)
    rstd = torch.rsqrt(var + eps)
    # (x - origin) - (mean - origin): large offsets cancel exactly in the first difference
    y = ((xg - origin.unsqueeze(-1)) - mean_c.to(dtype).unsqueeze(-1)) * rstd.unsqueeze(-1)
    y = y.view(bsz, length, dim) * (1 + weight.to(dtype)) + bias.to(dtype)
    y = torch.where(ok, y, 0.0)
    new_state = (n0 + valid.sum(1), mean[:, -1], var[:, -1])
    return y.to(x.dtype), new_state


class TimestepNorm(nn.Module):
    """Group-wise cumulative normalization over time with a carried state (see module docstring)."""

    def __init__(self, dim: int, groups: int, eps: float = 1e-5, backend: str = "auto", recompute: bool = False,
                 ) -> None:
        super().__init__()
        self.dim, self.groups, self.eps, self.backend, self.recompute = dim, groups, eps, backend, recompute
        self.weight = nn.Parameter(torch.zeros(dim))  # y * (1 + weight): identity at init
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, state: State | None = None, mask: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, State]:
        if backend_for(self.backend, x) == "triton":
            return triton_timestep_norm(x, self.weight, self.bias, self.groups, state, mask, self.eps)
        if self.recompute and torch.is_grad_enabled():  # store the inputs only; backward reruns the function
            return checkpoint(timestep_norm_cumulative, x, self.weight, self.bias, self.groups, state, mask, self.eps,
                              use_reentrant=False, preserve_rng_state=False)
        return timestep_norm_cumulative(x, self.weight, self.bias, self.groups, state, mask, self.eps)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, groups={self.groups}, eps={self.eps}, backend={self.backend}, "
                f"recompute={self.recompute}")
