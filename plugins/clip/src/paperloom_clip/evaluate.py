"""The paper's evaluations (Sec. 3 "Evaluation"): zero-shot classification from prompt templates (Radford et al.
2021 Sec. 3.1.4: the class weight is the mean of the normalized template embeddings, renormalized), image<->text
retrieval Recall@K both ways, and a linear probe (logistic regression on frozen image features, scikit-learn)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def image_features(model: Any, images: Iterable, batch_size: int = 64, progress: Any = None) -> torch.Tensor:
    """L2-normalized (N, D) features of a dataset whose items are {"image": ...} or (image, label)."""
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, collate_fn=_stack)
    model.eval()
    feats = [F.normalize(model.encode_image(x.to(_device(model))), dim=-1).cpu()
             for x, _ in (progress(loader, description="encoding images") if progress else loader)]
    return torch.cat(feats) if feats else torch.zeros(0, model.visual_projection.out_features)


def _stack(items: list) -> tuple[torch.Tensor, list]:
    if isinstance(items[0], dict):
        return torch.stack([it["image"] for it in items]), [it["text"] for it in items]
    return torch.stack([it[0] for it in items]), [it[1] for it in items]


@torch.no_grad()
def text_features(model: Any, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    model.eval()
    out = []
    for k in range(0, len(texts), batch_size):
        tokens = {n: t.to(_device(model)) for n, t in model.tokenize(list(texts[k: k + batch_size])).items()}
        out.append(F.normalize(model.encode_text(tokens), dim=-1).cpu())
    return torch.cat(out)


def zero_shot_classifier(model: Any, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(C, D): for each class, the normalized mean of its normalized template embeddings."""
    texts = [t.format(c) for c in classnames for t in templates]
    emb = text_features(model, texts).view(len(classnames), len(templates), -1)
    return F.normalize(emb.mean(1), dim=-1)


def zero_shot(model: Any, images: Any, labels: torch.Tensor | None, classnames: Sequence[str],
              templates: Sequence[str], batch_size: int = 64) -> dict[str, float]:
    """Top-1 (and top-5 with >= 10 classes) accuracy; `images` an ImageFolder-like dataset of (image, label)."""
    feats = image_features(model, images, batch_size)
    if labels is None:
        labels = torch.tensor([y for _, y in images.samples]) if hasattr(images, "samples") else \
            torch.tensor([images[i][1] for i in range(len(images))])
    logits = feats @ zero_shot_classifier(model, classnames, templates).T
    out = {"zero_shot_top1": (logits.argmax(1) == labels).float().mean().item()}
    if len(classnames) >= 10:
        out["zero_shot_top5"] = (logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean().item()
    return out


def recall_at_k(sim: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """sim (N, N), row i's match is column i: fraction of rows whose match ranks in the top k (ties: pessimistic)."""
    target = sim.diagonal()[:, None]
    rank = (sim > target).sum(1)  # how many candidates score strictly higher than the match
    return {f"r@{k}": (rank < k).float().mean().item() for k in ks}


def retrieval(model: Any, pairs: Any, batch_size: int = 64, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Image->text and text->image Recall@K over a pairs dataset (one caption per image)."""
    from .data import length

    items = pairs if length(pairs) is not None else list(pairs)
    img = image_features(model, items, batch_size)
    txt = text_features(model, [items[i]["text"] for i in range(len(items))])
    sim = img @ txt.T
    out = {f"image_to_text_{k}": v for k, v in recall_at_k(sim, ks).items()}
    out.update({f"text_to_image_{k}": v for k, v in recall_at_k(sim.T, ks).items()})
    return out


def linear_probe(model: Any, train: Any, test: Any, c: float = 1.0, batch_size: int = 64) -> dict[str, float]:
    """Logistic regression (scikit-learn, L-BFGS) on frozen normalized image features; test accuracy."""
    from sklearn.linear_model import LogisticRegression

    def xy(ds: Any) -> tuple:
        return image_features(model, ds, batch_size).numpy(), [y for _, y in ds.samples]

    (xtr, ytr), (xte, yte) = xy(train), xy(test)
    clf = LogisticRegression(C=c, max_iter=1000).fit(xtr, ytr)
    return {"linear_probe_acc": float(clf.score(xte, yte))}
