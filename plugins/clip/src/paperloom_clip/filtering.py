"""Data-quality filtering (paper Sec. 4.1, "data quality"): rank image-text pairs by the cosine similarity of their
image and text embeddings under a scoring CLIP model and keep the top fraction (the CLIP-score filtering of
LAION / DataComp)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


@torch.no_grad()
def score_pairs(model: Any, pairs: Any, batch_size: int = 64, progress: Any = None) -> tuple[list[dict], list[float]]:
    """(item records without the image, cosine score per pair), in dataset order."""
    loader = torch.utils.data.DataLoader(pairs, batch_size=batch_size, collate_fn=list)
    device = next(model.parameters()).device
    model.eval()
    records, scores = [], []
    from .data import length

    n = length(pairs)
    total = -(-n // batch_size) if n is not None else None  # shards: length unknown
    for batch in (progress((b for b in loader), total=total, description="scoring pairs") if progress else loader):
        images = torch.stack([it["image"] for it in batch]).to(device)
        tokens = {k: v.to(device) for k, v in model.tokenize([it["text"] for it in batch]).items()}
        sim = (F.normalize(model.encode_image(images), dim=-1) * F.normalize(model.encode_text(tokens), dim=-1)).sum(-1)
        scores += sim.cpu().tolist()
        records += [{k: v for k, v in it.items() if k != "image"} for it in batch]
    return records, scores


def keep_top(scores: list[float], fraction: float) -> list[int]:
    """Indices of the ceil(fraction * N) highest scores (ties: the earlier pair first), in dataset order."""
    k = min(len(scores), max(1, math.ceil(fraction * len(scores) - 1e-9))) if scores else 0
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(order[:k])


def histogram(scores: list[float], threshold: float, bins: int, path: Any, title: str) -> None:
    from paperloom.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8)
    ax.axvline(threshold, color="tab:red", linestyle="--", label=f"kept: score >= {threshold:.3f}")
    ax.set(xlabel="image-text cosine similarity", ylabel="pairs", title=title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
