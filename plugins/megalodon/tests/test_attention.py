"""Chunk-wise attention: chunk >= length == ordinary causal attention; chunks never see each other."""


import pytest
import torch
from paperloom_megalodon.attention import chunked_attention, rope
from reference import naive_causal


def _qkv(seed, bsz, length, heads, dz, dv):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(bsz, length, heads, dz, generator=g, dtype=torch.float64),
            torch.randn(bsz, length, heads, dz, generator=g, dtype=torch.float64),
            torch.randn(bsz, length, heads, dv, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("seed,length,chunk", [(0, 10, 10), (1, 17, 64), (2, 33, 33), (3, 5, 1000)])
def test_chunk_at_least_length_is_ordinary_causal_attention(seed, length, chunk):
    q, k, v = _qkv(seed, 2, length, 2, 8, 4)
    pos = torch.arange(length)
    q, k = rope(q, pos, 10000.0), rope(k, pos, 10000.0)
    torch.testing.assert_close(chunked_attention(q, k, v, chunk), naive_causal(q, k, v))
    kmask = (torch.rand(2, length, generator=torch.Generator().manual_seed(seed)) > 0.3).double()
    torch.testing.assert_close(chunked_attention(q, k, v, chunk, kmask), naive_causal(q, k, v, kmask))


@pytest.mark.parametrize("seed,length,chunk", [(0, 32, 8), (1, 30, 8), (2, 9, 4)])
def test_chunks_are_independent_causal_blocks(seed, length, chunk):
    q, k, v = _qkv(seed, 2, length, 1, 4, 3)
    out = chunked_attention(q, k, v, chunk)
    for s in range(0, length, chunk):
        e = min(length, s + chunk)
        torch.testing.assert_close(out[:, s:e], naive_causal(q[:, s:e], k[:, s:e], v[:, s:e]))


def test_rope_is_relative():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    def score(i, j):
        return float((rope(q, torch.tensor([i]), 1e4) * rope(k, torch.tensor([j]), 1e4)).sum())
    assert abs(score(5, 3) - score(12, 10)) < 1e-5
