"""Plain reference implementations of the paper's equations, written independently of the plugin's code."""

from __future__ import annotations

import functools
import math

import torch


def levenshtein(a: str, b: str) -> int:
    """Edit distance by the textbook recursion (memoised)."""

    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


def most_distinct(candidates: list[str], siblings: list[str]) -> int:
    """argmax_i min_j dist(c_i, s_j), first index on ties."""
    scores = [min(levenshtein(c, s) for s in siblings) for c in candidates]
    return scores.index(max(scores))


def puct(q, prior, n_parent, n_child, c):
    return q + c * prior * math.sqrt(n_parent) / (1 + n_child)


def n_children(imp, depth, alpha, cmin0, cmin, cmax0, cmax):
    """n(s) = max(c_min(t), min(floor(alpha I(s)) + 1, c_max(t)))."""
    lo = cmin0 if depth == 0 else cmin
    hi = cmax0 if depth == 0 else cmax
    return max(lo, min(int(math.floor(alpha * imp)) + 1, hi))


def score(v, prm, orm, bv, bp, bo):
    return bv * v + bp * prm + bo * orm


@torch.no_grad()
def greedy_no_cache(model, prefix: list[int], newline_ids: set[int], eos: int, max_tokens: int) -> list[int]:
    """Greedy decoding one option at a time with the whole sequence re-run every token (no KV cache)."""
    ids, out = list(prefix), []
    for _ in range(max_tokens):
        nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        if nxt == eos:
            break
        out.append(nxt)
        ids.append(nxt)
        if nxt in newline_ids:
            break
    return out
