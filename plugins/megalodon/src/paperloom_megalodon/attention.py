"""Megalodon's moving-average gated attention layer with normalized attention (arXiv 2404.08801, §2.2, §3.3).

    X'  = TimestepNorm(X)                                   (§3.2)
    M   = RMSNorm(CEMA(X'))                                  (§3.1)
    Z   = RMSNorm_per_head(M W_z + b_z)                      normalized attention (§3.3)
    Q   = kappa_q * Z + mu_q,  K = kappa_k * Z + mu_k        affine, shared Z; scale 1 in the softmax
    V   = silu(X' W_v + b_v),  R = silu(M W_r + b_r)
    O   = chunk-wise causal softmax(Q K^T) V                 RoPE with positions inside each chunk
    Y^  = M W_h1 + (O * R) W_h2 + X                          gated output + residual

Attention is block-diagonal over chunks of `chunk_size` tokens: cost O(L * chunk), linear in L. Context
crosses chunk borders only through CEMA and the timestep-norm statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .cema import ComplexEMA
from .timestep_norm import State, TimestepNorm


@dataclass
class LayerState:
    """What one layer carries between calls: CEMA state, norm statistics, keys/values of the open chunk."""

    hx: torch.Tensor | None = None  # (B, D, N) complex
    norm: State | None = None  # count (B,), mean (B, G), var (B, G)
    k: torch.Tensor | None = None  # (B, C', H, dz) rotated keys of the current chunk (C' < chunk_size)
    v: torch.Tensor | None = None  # (B, C', H, dv)
    kmask: torch.Tensor | None = None  # (B, C') key validity, None = all valid

    def index_select(self, idx: torch.Tensor) -> None:
        self.hx = None if self.hx is None else self.hx[idx]
        self.norm = None if self.norm is None else tuple(t[idx] for t in self.norm)
        for name in ("k", "v", "kmask"):
            t = getattr(self, name)
            setattr(self, name, None if t is None else t[idx])


def rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary embedding of x (B, L, H, d) at integer positions pos (L,) (half-split convention)."""
    half = x.shape[-1] // 2
    inv = base ** (-torch.arange(half, dtype=torch.float32, device=x.device) / half)
    ang = pos.to(torch.float32).unsqueeze(-1) * inv  # (L, half)
    cos, sin = ang.cos()[None, :, None, :].to(x.dtype), ang.sin()[None, :, None, :].to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _sdpa(q, k, v, mask=None, causal=False, dropout=0.0):
    """(B, Lq, H, d) inputs -> (B, Lq, H, dv); scale 1 (normalized attention)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                         is_causal=causal and mask is None, dropout_p=dropout, scale=1.0)
    return out.transpose(1, 2)


def _mask(lq: int, lk: int, past: int, kmask: torch.Tensor | None, device) -> torch.Tensor:
    """Boolean (B|1, 1, lq, lk): query i (at chunk position past+i) sees keys j <= past+i that are valid."""
    i = torch.arange(lq, device=device).unsqueeze(-1)
    j = torch.arange(lk, device=device)
    allowed = (j <= past + i).unsqueeze(0)
    if kmask is not None:
        allowed = allowed & kmask.bool().unsqueeze(1)
        allowed = allowed | (j == past + i).unsqueeze(0)  # a padded query still sees itself (no empty rows)
    return allowed.unsqueeze(1)


def chunked_attention(q, k, v, chunk: int, kmask: torch.Tensor | None = None, dropout: float = 0.0) -> torch.Tensor:
    """Block-diagonal causal attention over chunks of `chunk` tokens; q, k already rotated per chunk."""
    bsz, length, heads, _ = q.shape
    if length <= chunk:
        mask = None if kmask is None else _mask(length, length, 0, kmask, q.device)
        return _sdpa(q, k, v, mask, causal=True, dropout=dropout)
    nc = -(-length // chunk)
    pad = nc * chunk - length
    if pad:  # pad the last chunk at the end; causal masking keeps real queries from seeing it
        q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
        if kmask is not None:
            kmask = F.pad(kmask, (0, pad), value=0)

    def split(t):  # (B, nc*C, H, d) -> (B*nc, C, H, d)
        return t.reshape(bsz * nc, chunk, heads, t.shape[-1])

    mask = None if kmask is None else _mask(chunk, chunk, 0, kmask.reshape(bsz * nc, chunk), q.device)
    out = _sdpa(split(q), split(k), split(v), mask, causal=True, dropout=dropout)
    return out.reshape(bsz, nc * chunk, heads, -1)[:, :length]


class MegalodonAttention(nn.Module):
    """Timestep norm -> CEMA -> normalized, chunk-wise attention with gated output (module docstring)."""

    def __init__(self, config) -> None:
        super().__init__()
        d, z, e, h = config.hidden_size, config.z_dim, config.value_dim, config.num_attention_heads
        self.heads, self.z_head, self.v_head = h, z // h, e // h
        self.chunk, self.rope_base, self.eps = config.chunk_size, config.rope_base, config.norm_eps
        self.attention_dropout, self.hidden_dropout, self.dropout = (config.attention_dropout, config.hidden_dropout,
                                                                    config.dropout)
        recompute = getattr(config, "recompute_cema_norm", True)
        self.timenorm = TimestepNorm(d, config.norm_num_groups, config.norm_eps, config.kernel_backend, recompute)
        self.cema = ComplexEMA(d, config.cema_ndim, config.kernel_backend, recompute) if config.use_cema else None
        self.recompute_attention = getattr(config, "recompute_attention", False)
        self.rmsnorm = nn.RMSNorm(d, eps=config.norm_eps)
        self.wz = nn.Linear(d, z)
        self.wv = nn.Linear(d, e)
        self.wr = nn.Linear(d, e)
        self.wh1 = nn.Linear(d, d)
        self.wh2 = nn.Linear(e, d, bias=False)
        self.gamma = nn.Parameter(torch.zeros(2, z))  # q/k scales kappa = (1 + gamma) / sqrt(dz)
        self.beta = nn.Parameter(torch.zeros(2, z))  # q/k offsets mu

    def forward(self, x: torch.Tensor, state: LayerState | None = None, mask: torch.Tensor | None = None,
                use_cache: bool = False) -> tuple[torch.Tensor, LayerState | None]:
        """x (B, L, D); mask (B, L) 1 = real token (None = all); state carried from earlier calls."""
        state = state or LayerState()
        xn, norm = self.timenorm(x, state.norm, mask)  # (B, L, D)
        if self.cema is not None:
            mx, hx = self.cema(xn, state.hx, need_state=use_cache)
        else:
            mx, hx = xn, None
        mx = F.dropout(self.rmsnorm(mx), self.hidden_dropout, self.training)

        if self.recompute_attention and torch.is_grad_enabled() and not use_cache and state.k is None:
            # keep only X' and M: backward reruns projections, chunk attention and the gate (dropout replayed)
            h = checkpoint(lambda a, b: self._gated_attention(a, b, state, mask, False)[0], xn, mx,
                           use_reentrant=False)
            kv = {}
        else:
            h, kv = self._gated_attention(xn, mx, state, mask, use_cache)
        new = None
        if use_cache:  # the cache holds values, not graph (as the official code): detached
            new = LayerState(hx=None if hx is None else hx.detach(), norm=tuple(t.detach() for t in norm), **kv)
        return h + x, new

    def _gated_attention(self, xn, mx, state: LayerState, mask, use_cache: bool):
        """Z, Q, K, V, R from X' and M; chunk attention; h = M W_h1 + (O * R) W_h2 (before the residual)."""
        bsz, length, _ = xn.shape
        z = self.wz(mx).view(bsz, length, self.heads, self.z_head)
        z = F.rms_norm(z, (self.z_head,), eps=self.eps).reshape(bsz, length, -1)  # per-head RMS norm, shared Z
        q, k = (z.unsqueeze(2) * ((self.gamma + 1.0) / math.sqrt(self.z_head)) + self.beta).unbind(2)
        q = q.view(bsz, length, self.heads, self.z_head)
        k = k.view(bsz, length, self.heads, self.z_head)
        v = F.silu(self.wv(xn)).view(bsz, length, self.heads, self.v_head)
        r = F.silu(self.wr(mx))

        attn, kv = self._attend(q, k, v, state, mask, use_cache)
        attn = F.dropout(attn.reshape(bsz, length, -1) * r, self.hidden_dropout, self.training)
        h = F.dropout(self.wh1(mx) + self.wh2(attn), self.dropout, self.training)
        return h, kv

    def _attend(self, q, k, v, state: LayerState, mask, use_cache: bool):
        length, chunk = q.shape[1], self.chunk
        past = 0 if state.k is None else state.k.shape[1]  # tokens already in the open chunk
        pos = (past + torch.arange(length, device=q.device)) % chunk  # RoPE positions restart every chunk
        q, k = rope(q, pos, self.rope_base), rope(k, pos, self.rope_base)
        kmask = None if mask is None or bool(mask.all()) else mask
        drop = self.attention_dropout if self.training else 0.0
        first = min(length, chunk - past) if past else 0
        outs = []
        if first:  # finish the open chunk against its cached keys/values
            ck = torch.cat([state.k, k[:, :first]], 1)
            cv = torch.cat([state.v, v[:, :first]], 1)
            cm = None
            if kmask is not None or state.kmask is not None:
                old = state.kmask if state.kmask is not None else q.new_ones(q.shape[0], past)
                new = kmask[:, :first] if kmask is not None else q.new_ones(q.shape[0], first)
                cm = torch.cat([old.to(q.dtype), new.to(q.dtype)], 1)
            outs.append(_sdpa(q[:, :first], ck, cv, _mask(first, past + first, past, cm, q.device), dropout=drop))
        if first < length:
            rest = None if kmask is None else kmask[:, first:]
            outs.append(chunked_attention(q[:, first:], k[:, first:], v[:, first:], chunk, rest, drop))
        out = torch.cat(outs, 1) if len(outs) > 1 else outs[0]
        kv = {}
        if use_cache:
            keep = (past + length) % chunk
            allk = k if state.k is None else torch.cat([state.k, k], 1)
            allv = v if state.v is None else torch.cat([state.v, v], 1)
            kv = {"k": allk[:, allk.shape[1] - keep:].detach(), "v": allv[:, allv.shape[1] - keep:].detach()}
            if kmask is not None or state.kmask is not None:
                old = state.kmask if state.kmask is not None else q.new_ones(q.shape[0], past)
                cur = kmask if kmask is not None else q.new_ones(q.shape[0], length)
                allm = torch.cat([old.to(q.dtype), cur.to(q.dtype)], 1)
                kv["kmask"] = allm[:, allm.shape[1] - keep:]
        return out, kv
