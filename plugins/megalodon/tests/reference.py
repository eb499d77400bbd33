"""Plain reference implementations of Megalodon's equations (arXiv 2404.08801), written from the paper with
Python loops and no tricks: the parity tests compare the fast paths (FFT CEMA, cumulative timestep norm,
chunked attention, Triton kernels) with these on random inputs.
"""

import math

import torch


def naive_cema(x, alpha, delta, theta, eta, omega, h0=None):
    """CEMA (§3.1) written from the paper with python loops over features and states (float64)."""
    bsz, length, dim = x.shape
    ndim = alpha.shape[1]
    y = torch.zeros(bsz, length, dim, dtype=torch.float64)
    h_last = torch.zeros(bsz, dim, ndim, dtype=torch.complex128)
    for d in range(dim):
        for n in range(ndim):
            p = torch.sigmoid(alpha[d, n])
            mag = 1 - torch.sigmoid(alpha[d, n]) * torch.sigmoid(delta[d, n])
            ang = (n + 1) * torch.sigmoid(theta[d]) * 2 * math.pi / ndim
            q = complex(mag * math.cos(ang), mag * math.sin(ang))
            e = complex(eta[d, n, 0], eta[d, n, 1]) / math.sqrt(ndim)
            for b in range(bsz):
                h = complex(h0[b, d, n]) if h0 is not None else 0j
                for t in range(length):
                    h = float(p) * float(x[b, t, d]) + q * h
                    y[b, t, d] += (e * h).real
                h_last[b, d, n] = h
        y[:, :, d] += omega[d] * x[:, :, d]
    return y, h_last


def _initial_state(bsz, groups, dtype):
    """(count, mean, var) = (0, 0, 1) per sequence and group."""
    return (torch.zeros(bsz, dtype=torch.long), torch.zeros(bsz, groups, dtype=dtype),
            torch.ones(bsz, groups, dtype=dtype))


def timestep_norm_naive(x, weight, bias, groups, state=None, mask=None, eps=1e-5):
    """Timestep norm (§3.2): the update one timestep at a time; returns (y, (count, mean, var))."""
    bsz, length, dim = x.shape
    n, mu, var = (t.clone() for t in (state if state is not None else _initial_state(bsz, groups, x.dtype)))
    ys = []
    for t in range(length):
        xg = x[:, t].view(bsz, groups, -1)
        ok = torch.ones(bsz, dtype=torch.bool, device=x.device) if mask is None else mask[:, t].bool()
        n_new = n + ok.long()
        c = (1.0 / n_new.clamp_min(1).to(x.dtype)).unsqueeze(-1)
        d = xg.mean(-1) - mu
        mu_new = mu + c * d
        var_new = (1 - c) * var + c * xg.var(-1, unbiased=False) + c * (1 - c) * d**2
        mu, var = torch.where(ok.unsqueeze(-1), mu_new, mu), torch.where(ok.unsqueeze(-1), var_new, var)
        n = n_new
        y = ((xg - mu.unsqueeze(-1)) / torch.sqrt(var.unsqueeze(-1) + eps)).reshape(bsz, dim) * (1 + weight) + bias
        ys.append(y * ok.unsqueeze(-1))
    return torch.stack(ys, 1), (n, mu, var)


def naive_causal(q, k, v, kmask=None):
    """softmax(Q K^T + causal mask) V with scale 1, one head at a time."""
    bsz, length, heads, _ = q.shape
    out = torch.zeros(bsz, length, heads, v.shape[-1], dtype=q.dtype)
    for h in range(heads):
        s = q[:, :, h] @ k[:, :, h].transpose(1, 2)
        allowed = torch.ones(length, length, dtype=torch.bool).tril()
        if kmask is not None:
            allowed = (allowed & kmask.bool().unsqueeze(1)) | torch.eye(length, dtype=torch.bool)
        s = s.masked_fill(~allowed, -math.inf)
        out[:, :, h] = torch.softmax(s, -1) @ v[:, :, h]
    return out
