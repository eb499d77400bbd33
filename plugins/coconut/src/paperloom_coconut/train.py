"""Training and inference for panoptic models: a plain torch loop with atomic, resumable checkpoints.

Any model with ``forward(images) -> {sem, center, offset}`` trains here; any model with
``predict_panoptic(images) -> [(ids, segments_info)]`` is evaluated (see `evaluate_model`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from paperloom.errors import UserError
from paperloom.io import atomic_write_bytes, atomic_write_json

from .model import loss_fn, targets
from .panoptic import write_ids
from .pq import Accumulator, image_stats


def _batches(dataset, batch_size: int, seed: int, num_workers: int = 0):
    from .data import collate

    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                         drop_last=len(dataset) > batch_size, collate_fn=collate, generator=g,
                                         num_workers=num_workers)
    while True:
        yield from loader


def save_checkpoint(path: Path, model, opt, step: int, sched=None) -> None:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "scheduler": sched.state_dict() if sched is not None else {},
                "categories": model.categories, "model_config": model.config, "rng": torch.get_rng_state()}, buf)
    atomic_write_bytes(path, buf.getvalue())  # a kill never leaves a torn checkpoint


def train_model(model, dataset, ctx, *, steps: int, batch_size: int, lr: float, name: str = "last",
                checkpoint_every: int = 50, log_every: int = 10, num_workers: int = 0,
                prefix: str = "") -> dict[str, float]:
    """Train for `steps` AdamW steps (cosine decay), resuming from checkpoints/<name>.pt under --resume."""
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
    path = Path(ctx.checkpoint_dir) / f"{name}.pt"
    step = 0
    if ctx.resume and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        torch.set_rng_state(state["rng"])
        if state.get("scheduler"):
            sched.load_state_dict(state["scheduler"])
        ctx.log.info(f"{prefix or name}: resumed at step {step} from {path}")
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
            ctx.log_metrics({f"{prefix}{k}": v for k, v in parts.items()}, step=step)
        if step % checkpoint_every == 0 or step == steps:
            save_checkpoint(path, model, opt, step, sched)
    model.eval()
    out = {f"{prefix}steps": float(step)}
    if first is not None:
        out.update({f"{prefix}first_loss": first, f"{prefix}final_loss": last})
    return out


@torch.no_grad()
def predict_to_folder(model, dataset, out_dir: Path, batch_size: int = 8, device: str = "cpu") -> tuple[Path, Path]:
    """Run `model.predict_panoptic` over a dataset and write a COCO panoptic prediction folder + JSON."""
    out_dir = Path(out_dir)
    png_dir = out_dir / "panoptic_pred"
    png_dir.mkdir(parents=True, exist_ok=True)
    anns = []
    model.to(device).eval()
    for a in range(0, len(dataset), batch_size):
        items = [dataset.raw(i) for i in range(a, min(len(dataset), a + batch_size))]
        for img, _ids, rec in items:  # one image at a time: sizes may differ
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
            pred_ids, segs = model.predict_panoptic(x)[0]
            name = Path(rec["png"]).name
            write_ids(png_dir / name, pred_ids)
            anns.append({"image_id": rec["image_id"], "file_name": name, "segments_info": segs})
    js = out_dir / "panoptic_pred.json"
    atomic_write_json(js, {"annotations": anns, "categories": model.categories})
    return js, png_dir


@torch.no_grad()
def evaluate_model(model, dataset, ctx=None, want_ap: bool = True, device: str = "cpu") -> Accumulator:
    """PQ / mIoU / AP of any model with ``predict_panoptic`` against a `PanopticDataset`, in process."""
    from .pq import Categories

    if not hasattr(model, "predict_panoptic"):
        raise UserError(f"{type(model).__name__} has no predict_panoptic(images); choose a model producing "
                        "'panoptic-segmentation'")
    acc = Accumulator([{"id": c["id"], "name": c.get("name", ""), "isthing": c.get("isthing", 0)}
                       for c in dataset.categories], shards=[[0, 1, len(dataset)]])
    cats = Categories(acc.categories)
    if isinstance(model, torch.nn.Module):
        model.to(device).eval()
    rng = ctx.progress(range(len(dataset)), description="evaluating") if ctx is not None else range(len(dataset))
    for i in rng:
        img, ids, rec = dataset.raw(i)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
        pred_ids, segs = model.predict_panoptic(x)[0]
        acc.add(image_stats(ids, rec["segments_info"], pred_ids, segs, cats, want_ap, rec["image_id"],
                            f"image {rec['image_id']}"))
    return acc


def write_results(out: Path, acc: Accumulator, prefix: str = "") -> dict[str, float]:
    """metrics (flat) + per_class.json (per-category PQ/SQ/RQ, TP/FP/FN)."""
    per = acc.pq_per_class()
    atomic_write_json(Path(out) / f"{prefix}per_class.json", {str(k): v for k, v in per.items()})
    return {f"{prefix}{k}": v for k, v in acc.metrics().items()}


def table(rows: dict[str, dict[str, float]], keys: list[str]) -> str:
    head = "| labels | " + " | ".join(keys) + " |"
    sep = "|---" * (len(keys) + 1) + "|"
    body = ["| " + name + " | " + " | ".join(f"{100 * r.get(k, float('nan')):.1f}" for k in keys) + " |"
            for name, r in rows.items()]
    return "\n".join([head, sep, *body])

