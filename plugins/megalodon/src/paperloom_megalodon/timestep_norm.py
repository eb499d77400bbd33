"""Timestep normalization (arXiv 2404.08801, §3.2; semantics of the official `timestep_norm.py`).

Features are split into G contiguous groups. Each sequence carries a state (count n, group means mu,
group population variances var), by default (0, 0, 1). Every valid timestep t merges its group mean
m_t and within-group population variance v_t into the state:

    n += 1;  c = 1/n;  d = m_t - mu;  mu += c*d;  var = (1-c)*var + c*v_t + c*(1-c)*d^2
    y_t = (x_t - mu) / sqrt(var + eps) * (1 + w) + b          (w, b initialised to 0)

so mu / var are the mean / variance of all features of the sequence up to t (never looking ahead).
Padded steps output 0 and leave the state unchanged; the state carries across chunks and calls.

The PyTorch path computes all timesteps at once with cumulative sums (shifted for stability); the naive
loop above is `timestep_norm_naive` in tests/reference.py, the reference the tests compare with.
"""

from __future__ import annotations

import torch
from torch import nn

from .kernels import backend_for, triton_timestep_norm

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # count (B,) int64, mean (B, G), var (B, G)


def initial_state(bsz: int, groups: int, device: torch.device, dtype: torch.dtype = torch.float32) -> State:
    return (torch.zeros(bsz, dtype=torch.long, device=device), torch.zeros(bsz, groups, dtype=dtype, device=device),
            torch.ones(bsz, groups, dtype=dtype, device=device))


def timestep_norm_cumulative(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int,
                             state: State | None = None, mask: torch.Tensor | None = None, eps: float = 1e-5,
                             ) -> tuple[torch.Tensor, State]:
    """x (B, L, D), mask (B, L) of 1 = valid -> (y (B, L, D), new state). Parallel over time."""
    bsz, length, dim = x.shape
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if length == 0:
        return x, state if state is not None else initial_state(bsz, groups, x.device, dtype)
    xg = x.to(dtype).view(bsz, length, groups, dim // groups)
    m = xg.mean(-1)  # (B, L, G): group mean and within-group population variance
    v = (xg - m.unsqueeze(-1)).square().mean(-1)
    n0, mu0, var0 = state if state is not None else initial_state(bsz, groups, x.device, dtype)
    mu0, var0 = mu0.to(dtype), var0.to(dtype)
    valid = torch.ones(bsz, length, dtype=dtype, device=x.device) if mask is None else mask.to(dtype)
    prior = n0.to(dtype).unsqueeze(-1)  # (B, 1)
    shift = torch.where(prior > 0, mu0, m[:, 0]).detach().unsqueeze(1)  # any constant: a stable origin
    count = prior + valid.cumsum(1)  # (B, L)
    w = valid.unsqueeze(-1)
    s1 = prior.unsqueeze(1) * (mu0.unsqueeze(1) - shift) + (w * (m - shift)).cumsum(1)
    s2 = (prior.unsqueeze(1) * (var0.unsqueeze(1) + (mu0.unsqueeze(1) - shift) ** 2)
          + (w * (v + (m - shift) ** 2)).cumsum(1))
    n = count.clamp_min(1).unsqueeze(-1)
    mean_c = s1 / n  # mean - shift
    var = (s2 / n - mean_c**2).clamp_min(0)
    mean = mean_c + shift
    # before the first valid step the state is still the prior
    empty = (count == 0).unsqueeze(-1)
    mean, var = torch.where(empty, mu0.unsqueeze(1), mean), torch.where(empty, var0.unsqueeze(1), var)
    rstd = torch.rsqrt(var + eps)
    y = (xg - mean.unsqueeze(-1)) * rstd.unsqueeze(-1)
    y = y.view(bsz, length, dim) * (1 + weight.to(dtype)) + bias.to(dtype)
    y = y * w
    new_state = (n0 + valid.sum(1).long(), mean[:, -1], var[:, -1])
    return y.to(x.dtype), new_state


class TimestepNorm(nn.Module):
    """Group-wise cumulative normalization over time with a carried state (see module docstring)."""

    def __init__(self, dim: int, groups: int, eps: float = 1e-5, backend: str = "auto") -> None:
        super().__init__()
        self.dim, self.groups, self.eps, self.backend = dim, groups, eps, backend
        self.weight = nn.Parameter(torch.zeros(dim))  # y * (1 + weight): identity at init
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, state: State | None = None, mask: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, State]:
        if backend_for(self.backend, x) == "triton":
            return triton_timestep_norm(x, self.weight, self.bias, self.groups, state, mask, self.eps)
        return timestep_norm_cumulative(x, self.weight, self.bias, self.groups, state, mask, self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, groups={self.groups}, eps={self.eps}, backend={self.backend}"
