"""Block sliding-window attention (BSWA, Algorithm 1) and Feedback Attention Memory (FAM, Algorithm 2) of
TransformerFAM (Hwang et al., arXiv 2404.09173), run over any decoder layout of decoders.py.

Blocks of `block` tokens are counted from the first token of the stream. At layer l and block tau, with
F = F_{tau-1}^(l) (the FAM this layer produced at the previous block):

    Q, K, V    = proj(PreLN(X))            block tokens;  QF, KF, VF = proj(PreLN(F))   same weights
    X'         = X + Attn(Q; [K/V of the last `mem` blocks, KF/VF, own block causally])
    F'         = F + Attn(QF; [KF/VF, the whole block])          (no memory segments; bidirectional)
    X_out, F_tau^(l) = FFN-with-residual(X'), FFN-with-residual(F')

F_tau^(l) feeds layer l at block tau+1. FAM tokens never produce logits. F_0 (Appendix B.1) is a learned
prompt at the token-embedding level passed up the layers with full attention among the FAM tokens only; the
first update (tau = 1) uses a zero residual (F' = Attn(...)) when `zero_first_residual`. RoPE (B.2): a FAM
tensor carries one set of positions; F_tau takes the last `fam_len` positions of the block it compressed,
F_0 the positions -fam_len..-1 (`fam_positions="last"`). A partial last block gets logits but is compressed
only once complete, so streaming in any split equals one call; `fam_len = 0` is BSWA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .decoders import attend

POSITION_MODES = ("last", "float", "zero")


@dataclass
class Settings:
    block: int
    mem: int
    fam_len: int
    fam_positions: str = "last"
    zero_first_residual: bool = True


@dataclass
class LayerState:
    """One layer's working state: memory-segment K/V (at most `mem` blocks), the open block's K/V, the FAM
    F_{tau-1}^(l) with its keys/values (already rotated), and whether it is still the initial F_0."""

    mem_k: torch.Tensor
    mem_v: torch.Tensor
    blk_k: torch.Tensor
    blk_v: torch.Tensor
    fam: torch.Tensor | None = None        # (B, F, D)
    fam_k: torch.Tensor | None = None      # (B, Hkv, F, hd)
    fam_v: torch.Tensor | None = None
    initial: bool = True


@dataclass
class FAMState:
    """The streaming state: its size is O(layers x (mem + 1) x block + layers x fam_len), whatever the length."""

    layers: list[LayerState]
    start: int = 0          # position of the stream's first token (training: a random offset)
    seen: int = 0           # tokens consumed
    fam_history: list = field(default_factory=list)  # F_tau per completed block, when asked for

    @property
    def pos(self) -> int:
        return self.start + self.seen

    def index_select(self, idx: torch.Tensor) -> None:
        for s in self.layers:
            for name in ("mem_k", "mem_v", "blk_k", "blk_v", "fam", "fam_k", "fam_v"):
                t = getattr(s, name)
                if t is not None:
                    setattr(s, name, t.index_select(0, idx.to(t.device)))


def fam_positions(s: Settings, start: int, blocks_done: int) -> torch.Tensor:
    """Positions of F_{blocks_done}: the last fam_len positions of the block it compressed (B.2, `last`);
    F_0 sits at -fam_len..-1 before the stream. `zero`: every FAM token at the stream's start position."""
    if s.fam_positions == "zero":
        return torch.full((s.fam_len,), start, dtype=torch.long)
    return start + blocks_done * s.block - s.fam_len + torch.arange(s.fam_len)


def _rotate(layout: Any, s: Settings, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    return x if s.fam_positions == "float" else layout.rope(x, pos)  # `float`: FAM carries no position


def set_fam(layout: Any, s: Settings, st: LayerState, i: int, fam: torch.Tensor, pos: torch.Tensor) -> None:
    """Store F for layer i with its keys/values (computed once per block, reused by every token of it)."""
    _, k, v = layout.qkv(i, fam)
    st.fam, st.fam_k, st.fam_v = fam, _rotate(layout, s, k, pos), v


def initial_state(layout: Any, s: Settings, prompt: torch.Tensor | None, batch: int, start: int = 0,
                  training: bool = False, fams: list[torch.Tensor] | None = None) -> FAMState:
    """Empty memory; F_0^(l) from the learned prompt passed up the layers (B.1), or given `fams` per layer
    (random state passing: a previous sequence's F, marked not initial)."""
    ref = layout.model.get_input_embeddings().weight
    kv = (batch, layout.n_kv, 0, layout.head_dim)
    empty = ref.new_zeros(kv)
    states = [LayerState(empty, empty, empty, empty) for _ in layout.layers]
    if s.fam_len == 0:
        return FAMState(states, start)
    pos = fam_positions(s, start, 0)
    if fams is not None:
        for i, (st, f) in enumerate(zip(states, fams)):
            set_fam(layout, s, st, i, f, pos)
            st.initial = False
        return FAMState(states, start)
    h = prompt[None].expand(batch, -1, -1)  # (B, F, D): token-embedding level
    for i, st in enumerate(states):
        q, k, v = layout.qkv(i, h)
        q, k = _rotate(layout, s, q, pos), _rotate(layout, s, k, pos)
        h = layout.ffn(i, h + layout.out(i, attend(layout, q, k, v, None, training)))  # full attention among FAM
        set_fam(layout, s, st, i, h, pos)
    return FAMState(states, start)


def _tokens(layout: Any, s: Settings, st: LayerState, i: int, h: torch.Tensor, pos: torch.Tensor,
            training: bool) -> torch.Tensor:
    """Layer i on n new tokens of the open block (offset j0 = tokens of it already seen)."""
    q, k, v = layout.qkv(i, h)
    q, k = layout.rope(q, pos), layout.rope(k, pos)
    j0, n = st.blk_k.shape[2], h.shape[1]
    st.blk_k, st.blk_v = torch.cat([st.blk_k, k], 2), torch.cat([st.blk_v, v], 2)
    keys = [st.mem_k] + ([st.fam_k] if st.fam_k is not None else []) + [st.blk_k]
    vals = [st.mem_v] + ([st.fam_v] if st.fam_v is not None else []) + [st.blk_v]
    n_ctx = st.mem_k.shape[2] + (st.fam_k.shape[2] if st.fam_k is not None else 0)
    causal = torch.arange(j0 + n, device=h.device)[None, :] <= (j0 + torch.arange(n, device=h.device))[:, None]
    mask = torch.cat([causal.new_ones(n, n_ctx), causal], 1)  # (n, ctx + j0 + n): memory and FAM fully visible
    o = attend(layout, q, torch.cat(keys, 2), torch.cat(vals, 2), mask, training)
    return layout.ffn(i, h + layout.out(i, o))


def _compress(layout: Any, s: Settings, st: LayerState, i: int, start: int, done: int, training: bool) -> None:
    """Block `done` (1-based) is complete at layer i: F_done^(l) from F_{done-1}^(l) and the whole block (Alg. 2),
    then the block joins the memory segments (the oldest beyond `mem` blocks are dropped)."""
    if s.fam_len:
        f = st.fam
        q, _, _ = layout.qkv(i, f)
        q = _rotate(layout, s, q, fam_positions(s, start, done - 1))
        o = attend(layout, q, torch.cat([st.fam_k, st.blk_k], 2), torch.cat([st.fam_v, st.blk_v], 2), None, training)
        resid = torch.zeros_like(f) if (st.initial and s.zero_first_residual) else f
        set_fam(layout, s, st, i, layout.ffn(i, resid + layout.out(i, o)), fam_positions(s, start, done))
        st.initial = False
    keep = s.mem * s.block  # memory segments: the K/V of the last `mem` whole blocks (Algorithm 1)
    st.mem_k = torch.cat([st.mem_k, st.blk_k], 2)[:, :, -keep:] if keep else st.mem_k
    st.mem_v = torch.cat([st.mem_v, st.blk_v], 2)[:, :, -keep:] if keep else st.mem_v
    st.blk_k, st.blk_v = st.blk_k[:, :, :0], st.blk_v[:, :, :0]


def run(layout: Any, s: Settings, ids: torch.Tensor, state: FAMState, training: bool = False,
        keep_fams: bool = False) -> torch.Tensor:
    """Stream `ids` (B, T) through the decoder, continuing `state` (updated in place) -> hidden (B, T, D) after
    the last layer (before the final norm). Splits at block borders; a block is compressed once complete."""
    pos = state.pos + torch.arange(ids.shape[1])
    x = layout.embed(ids, pos)  # (B, T, D)
    outs, t = [], 0
    while t < ids.shape[1]:
        in_block = state.seen % s.block
        n = min(s.block - in_block, ids.shape[1] - t)
        h = x[:, t:t + n]
        for i, st in enumerate(state.layers):
            h = _tokens(layout, s, st, i, h, pos[t:t + n], training)
        outs.append(h)
        state.seen += n
        t += n
        if in_block + n == s.block:  # the block is complete: compress it into F and roll the memory
            done = state.seen // s.block
            for i, st in enumerate(state.layers):
                _compress(layout, s, st, i, state.start, done, training)
            if keep_fams and s.fam_len:
                state.fam_history.append(torch.stack([st.fam for st in state.layers]))  # (L, B, F, D)
    return torch.cat(outs, 1)
