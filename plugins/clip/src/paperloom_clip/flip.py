"""FLIP (Li et al. 2023, "Scaling Language-Image Pre-training via Masking"), as Scaling (Down) CLIP Sec. 3 uses it:
randomly drop a fraction of the image patch tokens after the position embedding, keep the CLS token, and encode
only what is left; no masking at evaluation. open_clip's `PatchDropout` does the same (random scores, top-k)."""

from __future__ import annotations

import torch


def kept_tokens(n_patches: int, ratio: float) -> int:
    """Tokens the encoder sees: CLS + max(1, int(N * (1 - ratio))) patches (open_clip PatchDropout)."""
    return 1 + max(1, int(n_patches * (1 - ratio)))


def patch_dropout(tokens: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 1 + N, D) -> (B, kept_tokens(N, ratio), D): CLS first, then a random subset of the patches per image
    (kept in their original order). Ratio 0 returns the input unchanged."""
    if ratio <= 0:
        return tokens
    cls, patches = tokens[:, :1], tokens[:, 1:]
    b, n, d = patches.shape
    keep = kept_tokens(n, ratio) - 1
    scores = torch.rand(b, n, generator=generator, device=tokens.device if generator is None else "cpu")
    idx = scores.to(tokens.device).topk(keep, dim=1).indices.sort(dim=1).values  # (B, keep)
    return torch.cat([cls, patches.gather(1, idx[..., None].expand(-1, -1, d))], 1)
