"""Task functions (``core run coconut:<task>``) and the plain torch training loop they share with the demo.

Any model with ``forward(images) -> {sem, center, offset}`` and a ``categories`` list trains here; any model
with ``predict_panoptic(images) -> [(ids, segments_info)]`` is evaluated by the ``coconut:pq`` evaluator.
"""

from __future__ import annotations

import functools
import glob
import math
from pathlib import Path
from typing import Any

from paperloom import UserError
from paperloom.io import atomic_write_json, read_json

from .config import ConvertConfig, DataConfig, EvaluateConfig, MergeConfig, TrainConfig, VisualizeConfig


def data_args(d: DataConfig, train: bool = False) -> dict[str, Any]:
    """The dataset component's keyword arguments from the data.* options (resize and flips for training only)."""
    return {"root": d.root, "splits": d.splits, "json": d.json, "png_dir": d.png_dir, "image_dir": d.image_dir,
            "cache_dir": d.cache_dir, "limit": d.limit, "train": train, "size": d.size if train else 0}


# --------------------------------------------------------------------------- training


def _batches(dataset, batch_size: int, seed: int, num_workers: int = 0):
    import torch

    from .data import collate

    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         drop_last=len(dataset) > batch_size, collate_fn=collate, generator=g,
                                         num_workers=num_workers)
    while True:
        yield from loader


def train_model(model, dataset, ctx, *, steps: int, batch_size: int, lr: float, checkpoint_every: int = 50,
                log_every: int = 10, num_workers: int = 0) -> dict[str, float]:
    """`steps` AdamW steps with cosine decay; ``ctx.checkpoint_dir/last.pt`` is written every `checkpoint_every`
    steps and continued from under --resume (a `Stage` gives each training its own)."""
    import torch

    from paperloom.checkpoint import Checkpoint

    from .components import checkpoint_extra
    from .model import loss_fn, targets

    if len(dataset) == 0:
        raise UserError("the training split holds no images; check data.root / data.splits / data.json")
    cat_index = {c["id"]: i for i, c in enumerate(model.categories)}
    missing = sorted({c["id"] for c in dataset.categories} - set(cat_index))
    if missing:
        raise UserError(f"the dataset has category ids {missing[:5]} that the model does not know; build the model "
                        "with the dataset's categories")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(1, steps))))
    ckpt = Checkpoint(ctx, "last")
    step = ckpt.restore(model, opt, sched)
    model.to(ctx.device).train()
    batches = _batches(dataset, batch_size, ctx.seed + step, num_workers)
    first = last = None
    while step < steps:
        batch = next(batches)
        x = torch.stack([b["image"].float() / 255 for b in batch]).to(ctx.device)
        tg = [targets(b, cat_index) for b in batch]
        tgt = {k: torch.stack([t[k] for t in tg]).to(ctx.device) for k in tg[0]}
        loss, parts = loss_fn(model(x), tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        first = parts["loss"] if first is None else first
        last = parts["loss"]
        if step % log_every == 0 or step == steps:
            ctx.log_metrics(parts, step=step)
        if step % checkpoint_every == 0 or step == steps:
            ckpt.save(step, model, opt, sched, **checkpoint_extra(model))
    model.eval()
    out = {"steps": float(step)}
    if first is not None:
        out.update({"first_loss": first, "final_loss": last})
    return out


# --------------------------------------------------------------------------- results


def predict_to_folder(model, dataset, out_dir: Path, device: str = "cpu") -> tuple[Path, Path]:
    """Run `model.predict_panoptic` over a dataset, one image at a time (sizes may differ), and write a COCO
    panoptic prediction folder: (panoptic_pred.json, panoptic_pred/)."""
    import torch

    from .panoptic import write_ids

    out_dir = Path(out_dir)
    png_dir = out_dir / "panoptic_pred"
    png_dir.mkdir(parents=True, exist_ok=True)
    anns = []
    model.to(device).eval()
    with torch.no_grad():
        for i in range(len(dataset)):
            img, _ids, rec = dataset.raw(i)
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
            pred_ids, segs = model.predict_panoptic(x)[0]
            name = Path(rec["png"]).name
            write_ids(png_dir / name, pred_ids)
            anns.append({"image_id": rec["image_id"], "file_name": name, "segments_info": segs})
    js = out_dir / "panoptic_pred.json"
    atomic_write_json(js, {"annotations": anns, "categories": model.categories})
    return js, png_dir


def write_results(out: Path, acc, prefix: str = "", log: Any = None) -> dict[str, float]:
    """Flat metrics, and <prefix>per_class.json (per-category PQ/SQ/RQ, TP/FP/FN); odd inputs as warnings."""
    from .pq import odd_warnings

    for line in odd_warnings(acc.odd) if log else ():
        log.warning(line)
    per = acc.pq_per_class()
    atomic_write_json(Path(out) / f"{prefix}per_class.json", {str(k): v for k, v in per.items()})
    return {f"{prefix}{k}": v for k, v in acc.metrics().items()}


def score(evaluate, source, data, ctx, prefix: str = "") -> dict[str, float]:
    """`evaluate(source, data, ctx)` with `prefix` on each metric; an evaluator with `accumulate` (coconut:pq)
    also writes its per-class table."""
    if hasattr(evaluate, "accumulate"):
        return write_results(ctx.out, evaluate.accumulate(source, data, ctx), prefix, ctx.log)
    return {f"{prefix}{k}": float(v) for k, v in evaluate(source, data, ctx).items()}


# --------------------------------------------------------------------------- tasks


def train(cfg: TrainConfig, ctx) -> dict[str, float]:
    data = ctx.build(cfg.dataset, **data_args(cfg.data, train=True))
    for ix in getattr(data, "indexes", ()):  # evaluation tolerates these as panopticapi does; training needs clean data
        for name, (count, example) in getattr(ix, "oddities", {}).items():
            from .pq import ODDITIES

            raise UserError(f"{example}: {ODDITIES[name]} ({count} in the split); training needs consistent "
                            "annotations: fix the JSON")
    model = ctx.build(cfg.model, categories=data.categories, **cfg.model_args)
    out = train_model(model, data, ctx, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                      checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every, num_workers=cfg.num_workers)
    ctx.log.info(f"weights: {Path(ctx.checkpoint_dir) / 'last.pt'} (evaluate with --set checkpoint=...)")
    return out


def evaluate(cfg: EvaluateConfig, ctx) -> dict[str, float]:
    from .pq import parse_shard

    shard = parse_shard(cfg.shard)
    data = ctx.build(cfg.dataset, **data_args(cfg.data))
    evaluator = ctx.build(cfg.evaluator, metrics=cfg.metrics, processes=cfg.processes, shard=shard,
                          strict=cfg.strict)
    if cfg.predictions:
        if not cfg.predictions_dir:
            raise UserError("predictions is set but predictions_dir is empty; set the folder of predicted PNGs")
        source: Any = (cfg.predictions, cfg.predictions_dir)
    else:
        kwargs = {"checkpoint": cfg.checkpoint} if cfg.checkpoint else {"categories": data.categories}
        source = ctx.build(cfg.model, **kwargs)
        if not cfg.checkpoint:
            ctx.log.warning("no checkpoint given: evaluating a randomly initialised model")
    if not hasattr(evaluator, "accumulate"):  # another plugin's evaluator: its metrics, no shard files
        return score(evaluator, source, data, ctx)
    acc = evaluator.accumulate(source, data, ctx)
    atomic_write_json(ctx.out / "partial.json", acc.to_json())
    if shard[1] > 1:
        ctx.log.info(f"shard {shard[0]}/{shard[1]}: {acc.n_images} images -> {ctx.out / 'partial.json'}; "
                     "combine all shards with `core run coconut:merge --set parts=[...]`")
    return {**write_results(ctx.out, acc, log=ctx.log), "shard_index": float(shard[0]), "shard_count": float(shard[1])}


def merge(cfg: MergeConfig, ctx) -> dict[str, float]:
    from .pq import Accumulator

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
    return write_results(ctx.out, acc, log=ctx.log)


def convert(cfg: ConvertConfig, ctx) -> dict[str, float]:
    from .convert import convert_index
    from .data import open_splits

    d = cfg.data
    out = Path(cfg.output) if cfg.output else ctx.out / cfg.to
    result: dict[str, float] = {}
    for ix in open_splits(d.root, d.splits, d.json, d.png_dir, d.image_dir, d.cache_dir):
        sub = out / ix.name if len(d.splits) > 1 and not d.json else out
        imap = functools.partial(ctx.imap, workers=cfg.processes)
        for k, v in convert_index(ix, sub, cfg.to, ctx.progress, d.limit, imap=imap).items():
            result[k] = result.get(k, 0.0) + v
    ctx.log.info(f"wrote {cfg.to} labels to {out}")
    return result


def visualize(cfg: VisualizeConfig, ctx) -> dict[str, float]:
    from .pq import load_predictions
    from .visualize import visualize as draw

    data = ctx.build(cfg.dataset, **data_args(cfg.data))
    preds = load_predictions(cfg.predictions, cfg.predictions_dir) if cfg.predictions else None
    out = draw(data, ctx.out, cfg.images, preds, cfg.predictions_dir, cfg.alpha)
    ctx.log.info(f"overlays in {ctx.out / 'overlays'}" + (f", error maps in {ctx.out / 'errors'}" if preds else ""))
    return out
