"""Task functions (``core run coconut:<task>``) and the ``coconut:pq`` evaluator component."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from paperloom.errors import UserError
from paperloom.io import atomic_write_json, atomic_write_text, read_json

from .config import ConvertConfig, DataConfig, DemoConfig, EvaluateConfig, MergeConfig, TrainConfig, VisualizeConfig


def _indexes(d: DataConfig):
    from .data import open_splits

    return open_splits(d.root, d.splits, d.json, d.png_dir, d.image_dir, d.cache_dir)


def _dataset(d: DataConfig, train: bool = False):
    from .data import PanopticDataset, make_transforms

    return PanopticDataset(_indexes(d), make_transforms(train, d.size if train else 0), d.limit)


def _threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


class _Subset:
    """Images i of a dataset with i % n == k (a shard), keeping `raw` and `categories`."""

    def __init__(self, data, keep: list[int]) -> None:
        self.data, self.keep, self.categories = data, keep, data.categories

    def __len__(self) -> int:
        return len(self.keep)

    def raw(self, i: int):
        return self.data.raw(self.keep[i])


# --------------------------------------------------------------------------- evaluator component


def evaluate_any(model_or_predictions: Any, data, ctx=None, *, want_ap: bool = True, processes: int = 1,
                 shard: tuple[int, int] = (0, 1)):
    """Accumulator for a model (``predict_panoptic``) or a prediction folder (path, or (json, png_dir))."""
    from .pq import evaluate_folder, load_predictions

    if hasattr(model_or_predictions, "predict_panoptic"):
        from .train import evaluate_model

        sub = _Subset(data, [i for i in range(len(data)) if i % shard[1] == shard[0]])
        acc = evaluate_model(model_or_predictions, sub, ctx, want_ap, getattr(ctx, "device", "cpu"))
        acc.shards = [[shard[0], shard[1], len(data)]]
        return acc
    if isinstance(model_or_predictions, (str, Path)):
        folder = Path(model_or_predictions)
        js, png = folder / "panoptic_pred.json", folder / "panoptic_pred"
    else:
        js, png = model_or_predictions
    preds = load_predictions(str(js), str(png))
    total = None
    for ix in data.indexes:
        acc = evaluate_folder(ix, preds, str(png), processes=processes, shard=shard, want_ap=want_ap,
                              limit=data.limit, progress=getattr(ctx, "progress", None))
        total = acc if total is None else (total.merge(acc) or total)
    total.shards = [[shard[0], shard[1], len(data)]]
    return total


def build_evaluator(metrics: list | tuple = ("pq", "miou", "ap"), processes: int = 1):
    """The ``coconut:pq`` evaluator: ``evaluate(model_or_predictions, data, ctx=None) -> metrics``."""

    def evaluate(model_or_predictions, data, ctx=None) -> dict[str, float]:
        acc = evaluate_any(model_or_predictions, data, ctx, want_ap="ap" in metrics, processes=processes)
        return acc.metrics()

    return evaluate


# --------------------------------------------------------------------------- tasks


def train(cfg: TrainConfig, ctx) -> dict[str, float]:
    from .train import train_model

    _threads(cfg.threads)
    data = _dataset(cfg.data, train=True)
    model = ctx.build(cfg.model, categories=data.categories, width=cfg.width)
    out = train_model(model, data, ctx, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, name="last",
                      checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every, num_workers=cfg.num_workers)
    ctx.log.info(f"weights: {Path(ctx.checkpoint_dir) / 'last.pt'} (evaluate with --set checkpoint=...)")
    return out


def evaluate(cfg: EvaluateConfig, ctx) -> dict[str, float]:
    from .pq import parse_shard
    from .train import write_results

    bad = [m for m in cfg.metrics if m not in ("pq", "miou", "ap")]
    if bad:
        raise UserError(f"metrics: {bad[0]!r} is not valid; expected pq, miou, ap")
    shard = parse_shard(cfg.shard)
    data = _dataset(cfg.data)
    if cfg.predictions:
        if not cfg.predictions_dir:
            raise UserError("predictions is set but predictions_dir is empty; set the folder of predicted PNGs")
        source: Any = (cfg.predictions, cfg.predictions_dir)
    else:
        kwargs = {"checkpoint": cfg.checkpoint} if cfg.checkpoint else {"categories": data.categories}
        source = ctx.build(cfg.model, **kwargs)
        if not cfg.checkpoint:
            ctx.log.warning("no checkpoint given: evaluating a randomly initialised model")
    acc = evaluate_any(source, data, ctx, want_ap="ap" in cfg.metrics, processes=cfg.processes, shard=shard)
    atomic_write_json(ctx.out / "partial.json", acc.to_json())
    if shard[1] > 1:
        ctx.log.info(f"shard {shard[0]}/{shard[1]}: {acc.n_images} images -> {ctx.out / 'partial.json'}; "
                     "combine all shards with `core run coconut:merge --set parts=[...]`")
    return {**write_results(ctx.out, acc), "shard_index": float(shard[0]), "shard_count": float(shard[1])}


def merge(cfg: MergeConfig, ctx) -> dict[str, float]:
    from .pq import Accumulator
    from .train import write_results

    files: list[Path] = []
    for part in cfg.parts:
        matches = sorted(glob.glob(str(Path(part).expanduser()))) or [part]
        for m in matches:
            p = Path(m)
            files.append(p / "partial.json" if p.is_dir() else p)
    if not files:
        raise UserError("parts is empty; list the partial.json files (or run folders) of the shard evaluations")
    acc = None
    for f in files:
        part = Accumulator.from_json(read_json(f), str(f))
        acc = part if acc is None else (acc.merge(part) or acc)
    sizes = {(n, total) for _, n, total in acc.shards}
    if len(sizes) != 1:
        raise UserError(f"the parts come from different shardings or splits: {sorted(sizes)}")
    n, total = sizes.pop()
    got = sorted(i for i, _, _ in acc.shards)
    missing, dup = sorted(set(range(n)) - set(got)), sorted({i for i in got if got.count(i) > 1})
    if missing or dup:
        raise UserError(f"shards of {n}: missing {missing or 'none'}, duplicated {dup or 'none'}; pass each shard once")
    acc.shards = [[0, 1, total]]
    atomic_write_json(ctx.out / "partial.json", acc.to_json())
    ctx.log.info(f"merged {len(files)} shards, {acc.n_images} images")
    return write_results(ctx.out, acc)


def convert(cfg: ConvertConfig, ctx) -> dict[str, float]:
    from .convert import convert_index

    out = Path(cfg.output) if cfg.output else ctx.out / cfg.to
    result: dict[str, float] = {}
    for ix in _indexes(cfg.data):
        sub = out / ix.name if len(cfg.data.splits) > 1 and not cfg.data.json else out
        for k, v in convert_index(ix, sub, cfg.to, getattr(ctx, "progress", None), cfg.data.limit).items():
            result[k] = result.get(k, 0.0) + v
    ctx.log.info(f"wrote {cfg.to} labels to {out}")
    return result


def visualize_task(cfg: VisualizeConfig, ctx) -> dict[str, float]:
    from .pq import load_predictions
    from .visualize import visualize

    data = _dataset(cfg.data)
    preds = load_predictions(cfg.predictions, cfg.predictions_dir) if cfg.predictions else None
    out = visualize(data, ctx.out, cfg.images, preds, cfg.predictions_dir, cfg.alpha)
    ctx.log.info(f"overlays in {ctx.out / 'overlays'}" + (f", error maps in {ctx.out / 'errors'}" if preds else ""))
    return out


# --------------------------------------------------------------------------- demo


def demo(cfg: DemoConfig, ctx) -> dict[str, float]:
    """Generate fine + coarse labels, train the baseline on each, evaluate both on the fine val labels."""
    from .data import build_dataset
    from .model import build_baseline
    from .pq import evaluate_folder, load_predictions
    from .synth import CATS, generate
    from .train import predict_to_folder, table, train_model, write_results
    from .visualize import visualize

    _threads(cfg.threads)
    paths = generate(ctx.out / "data", cfg.n_train, cfg.n_val, cfg.size, ctx.seed)
    val = build_dataset(root=str(paths["fine"]), splits=["relabeled-val"])
    results: dict[str, float] = {}
    rows = {}
    for label in ("fine", "coarse"):
        train_data = build_dataset(root=str(paths[label]), splits=["s"], image_dir=str(paths["fine"] / "train2017"),
                                   train=True)
        model = build_baseline(CATS, width=cfg.width)
        results.update(train_model(model, train_data, ctx, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                   name=label, checkpoint_every=50, log_every=10, prefix=f"{label}_"))
        js, png = predict_to_folder(model, val, ctx.out / f"pred_{label}", device=ctx.device)
        acc = evaluate_folder(val.indexes[0], load_predictions(str(js), str(png)), str(png), processes=cfg.processes)
        m = write_results(ctx.out, acc, prefix=f"{label}_")
        results.update(m)
        rows[f"{label} labels"] = {k[len(label) + 1:]: v for k, v in m.items()}
        if cfg.visualize:
            visualize(val, ctx.out / f"vis_{label}", cfg.visualize, load_predictions(str(js), str(png)), str(png))
    # sanity: ground truth evaluated as a prediction scores 1 everywhere
    gt = val.indexes[0]
    gt_acc = evaluate_folder(gt, load_predictions(str(gt.json_path), str(gt.png_dir)), str(gt.png_dir), processes=1)
    gm = gt_acc.metrics()
    results.update({"gt_as_pred_pq": gm["pq"], "gt_as_pred_ap": gm["ap"], "gt_as_pred_miou": gm["miou"]})
    keys = ["pq", "sq", "rq", "pq_th", "pq_st", "ap", "ap50", "box_ap", "miou"]
    text = table(rows, keys)
    atomic_write_text(ctx.out / "fine_vs_coarse.md", text + "\n")
    ctx.log.info("evaluated on the fine validation labels (values in %):\n" + text)
    _plot(rows, keys, ctx.out / "fine_vs_coarse.png")
    return results


def _plot(rows: dict, keys: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.arange(len(keys))
    for k, (name, r) in enumerate(rows.items()):
        ax.bar(x + (k - 0.5) * 0.38, [100 * r.get(m, 0) for m in keys], 0.38, label=name)
    ax.set_xticks(x, keys)
    ax.set_ylabel("%")
    ax.set_title("COCONut demo: baseline trained on fine vs coarse labels, evaluated on fine labels")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
