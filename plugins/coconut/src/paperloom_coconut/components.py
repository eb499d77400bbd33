"""Builders of coconut's components, ``builder(ctx, **kwargs)``: the ``panoptic`` dataset, the ``baseline``
model and the ``pq`` evaluator."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch

from paperloom import UserError

from .data import PanopticDataset, make_transforms, open_splits
from .model import BaselineConfig, PanopticBaseline
from .pq import Accumulator, Categories, evaluate_folder, image_stats, load_predictions

# --------------------------------------------------------------------------- coconut:panoptic


def build_panoptic(ctx: Any, root: str = "", splits: Sequence[str] = ("val",), json: str = "", png_dir: str = "",
                   image_dir: str = "", cache_dir: str = "", train: bool = False, size: int = 0,
                   limit: int = 0) -> PanopticDataset:
    """One or more COCONut splits merged in order (``coco-panoptic`` items); ``train`` adds flips."""
    return PanopticDataset(open_splits(root, splits, json, png_dir, image_dir, cache_dir), make_transforms(train, size),
                           limit)


# --------------------------------------------------------------------------- coconut:baseline


def build_baseline(ctx: Any, categories: list[dict] | None = None, width: int = 32, center_threshold: float = 0.2,
                   min_area: int = 4, checkpoint: str = "") -> PanopticBaseline:
    """A random-init baseline for `categories` (default: the 133 COCO panoptic ones), or the weights, categories
    and sizes saved in ``checkpoint`` (a .pt written by coconut:train)."""
    if checkpoint:
        return load_baseline(checkpoint)
    return PanopticBaseline(categories, BaselineConfig(width, center_threshold, min_area))


def checkpoint_extra(model: Any) -> dict:
    """What a checkpoint needs besides the weights to rebuild the model (plain data: weights-only loading)."""
    config = getattr(model, "config", None)
    return {"categories": model.categories, **({"model_config": asdict(config)} if is_dataclass(config) else {})}


def load_baseline(path: str) -> PanopticBaseline:
    from paperloom.checkpoint import load_checkpoint

    if not Path(path).is_file():
        raise UserError(f"checkpoint {path} does not exist; pass a .pt file written by coconut:train")
    state = load_checkpoint(path)
    extra = state.get("extra") or state  # coconut 0.1 kept categories and model_config at the top level
    if "model" not in state or "categories" not in extra:
        raise UserError(f"{path} is not a coconut baseline checkpoint (needs the weights and their categories)")
    model = PanopticBaseline(extra["categories"], BaselineConfig(**extra["model_config"]))
    model.load_state_dict(state["model"])
    return model


# --------------------------------------------------------------------------- coconut:pq


class Shard:
    """Images i of a dataset with i % n == k, keeping `raw` and `categories` (what `evaluate_model` reads)."""

    def __init__(self, data: Any, shard: tuple[int, int]) -> None:
        self.data, self.categories = data, data.categories
        self.keep = [i for i in range(len(data)) if i % shard[1] == shard[0]]

    def __len__(self) -> int:
        return len(self.keep)

    def raw(self, i: int) -> tuple:
        return self.data.raw(self.keep[i])


@torch.no_grad()
def evaluate_model(model: Any, dataset: Any, ctx: Any, want_ap: bool = True) -> Accumulator:
    """Statistics of any model with ``predict_panoptic(images)`` over a dataset with ``raw(i)``, in process."""
    if not hasattr(model, "predict_panoptic"):
        raise UserError(f"{type(model).__name__} has no predict_panoptic(images); choose a model producing "
                        "'panoptic-segmentation'")
    acc = Accumulator([{"id": c["id"], "name": c.get("name", ""), "isthing": c.get("isthing", 0)}
                       for c in dataset.categories], shards=[[0, 1, len(dataset)]])
    cats = Categories(acc.categories)
    if isinstance(model, torch.nn.Module):
        model.to(ctx.device).eval()
    for i in ctx.progress(range(len(dataset)), description="evaluating"):
        img, ids, rec = dataset.raw(i)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(ctx.device)
        pred_ids, segs = model.predict_panoptic(x)[0]
        acc.add(image_stats(ids, rec["segments_info"], pred_ids, segs, cats, want_ap, rec["image_id"],
                            f"image {rec['image_id']}"))
    return acc


class PQEvaluator:
    """``evaluate(model_or_predictions, data, ctx) -> metrics``: PQ/SQ/RQ, mIoU and (with "ap") mask/box AP.

    The source is a model (``predict_panoptic``, run in process) or a prediction folder (its path, holding
    panoptic_pred.json + panoptic_pred/, or a (json, png_dir) pair, evaluated by `processes` workers).
    `accumulate` returns the additive statistics instead (per-class tables, shard files, exact merges)."""

    def __init__(self, metrics: Sequence[str], processes: int, shard: tuple[int, int], strict: bool = False) -> None:
        self.want_ap, self.processes, self.shard, self.strict = "ap" in metrics, processes, tuple(shard), strict

    def __call__(self, model_or_predictions: Any, data: Any, ctx: Any) -> dict[str, float]:
        return self.accumulate(model_or_predictions, data, ctx).metrics()

    def accumulate(self, model_or_predictions: Any, data: Any, ctx: Any) -> Accumulator:
        if hasattr(model_or_predictions, "predict_panoptic"):
            acc = evaluate_model(model_or_predictions, Shard(data, self.shard), ctx, self.want_ap)
        else:
            if isinstance(model_or_predictions, (str, Path)):
                folder = Path(model_or_predictions)
                js, png = folder / "panoptic_pred.json", folder / "panoptic_pred"
            else:
                js, png = model_or_predictions
            preds = load_predictions(str(js), str(png))
            acc = None
            for ix in data.indexes:
                part = evaluate_folder(ix, preds, str(png), shard=self.shard, want_ap=self.want_ap,
                                       limit=data.limit, strict=self.strict, processes=self.processes,
                                       imap=functools.partial(ctx.imap, workers=self.processes))
                acc = part if acc is None else (acc.merge(part) or acc)
        acc.shards = [[self.shard[0], self.shard[1], len(data)]]
        return acc


def build_pq(ctx: Any, metrics: Sequence[str] = ("pq", "miou", "ap"), processes: int = 1,
             shard: Sequence[int] = (0, 1), strict: bool = False) -> PQEvaluator:
    """The ``coconut:pq`` evaluator; ``metrics`` without "ap" skips mask/box AP (pq and miou always come);
    ``strict`` makes the inconsistent inputs panopticapi evaluates anyway (`pq.ODDITIES`) errors."""
    bad = [m for m in metrics if m not in ("pq", "miou", "ap")]
    if bad:
        raise UserError(f"metrics: {bad[0]!r} is not valid; expected pq, miou, ap")
    return PQEvaluator(metrics, processes, (int(shard[0]), int(shard[1])), bool(strict))
