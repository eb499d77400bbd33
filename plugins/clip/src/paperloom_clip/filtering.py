"""Data-quality filtering (paper Sec. 4.1, "data quality"): rank image-text pairs by the cosine similarity of their
image and text embeddings under a scoring CLIP model and keep the top fraction (the CLIP-score filtering of
LAION / DataComp)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


@torch.no_grad()
def _score_batches(model: Any, batches: Any) -> tuple[list[dict], list[float]]:
    device = next(model.parameters()).device
    model.eval()
    records, scores = [], []
    for batch in batches:
        images = torch.stack([it["image"] for it in batch]).to(device)
        tokens = {k: v.to(device) for k, v in model.tokenize([it["text"] for it in batch]).items()}
        sim = (F.normalize(model.encode_image(images), dim=-1) * F.normalize(model.encode_text(tokens), dim=-1)).sum(-1)
        scores += sim.cpu().tolist()
        records += [{k: v for k, v in it.items() if k != "image"} for it in batch]
    return records, scores


def _score_range(model: Any, pairs: Any, batch_size: int, span: tuple[int, int]) -> tuple[list[dict], list[float]]:
    """One map item: pairs[start:stop] in batches of batch_size (the batches a single process would make)."""
    start, stop = span
    return _score_batches(model, ([pairs[i] for i in range(b, min(b + batch_size, stop))]
                                  for b in range(start, stop, batch_size)))


def score_pairs(model: Any, pairs: Any, batch_size: int = 64, progress: Any = None, imap: Any = None,
                chunk_batches: int = 16) -> tuple[list[dict], list[float]]:
    """(item records without the image, cosine score per pair), in dataset order. A map-style dataset goes
    through `imap` (``ctx.imap``: local worker processes or Ray; items are spans of `chunk_batches` batches, so
    a worker receives the model once per span); a stream (webdataset shards) is read in this process, its
    decoding spread over the DataLoader's workers."""
    import functools

    from .data import length

    n = length(pairs)
    if n is not None and imap is not None:
        span = batch_size * chunk_batches
        spans = [(s, min(s + span, n)) for s in range(0, n, span)]
        records, scores = [], []
        for r, sc in imap(functools.partial(_score_range, model, pairs, batch_size), spans, total=len(spans),
                          description="scoring pairs", chunksize=1):
            records += r
            scores += sc
        return records, scores
    loader = torch.utils.data.DataLoader(pairs, batch_size=batch_size, collate_fn=list)
    total = -(-n // batch_size) if n is not None else None  # shards: length unknown
    batches = (b for b in loader)  # a generator: the progress bar must not ask a stream's DataLoader for len()
    return _score_batches(model, progress(batches, total=total, description="scoring pairs") if progress else batches)


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
