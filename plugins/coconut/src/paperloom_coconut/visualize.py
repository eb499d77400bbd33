"""Overlays of panoptic masks (category colors, boundaries, labels) and prediction-vs-GT error maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .categories import color_of
from .panoptic import label_map, save_png
from .pq import Categories, image_stats

ERROR_COLORS = {"tp": (40, 200, 70), "fn": (230, 40, 40), "fp": (40, 110, 240), "void": (128, 128, 128)}


def _boundaries(lab: np.ndarray) -> np.ndarray:
    b = np.zeros(lab.shape, bool)
    b[1:] |= lab[1:] != lab[:-1]
    b[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    return b


def _upscale(a: np.ndarray, f: int) -> np.ndarray:
    return a.repeat(f, 0).repeat(f, 1) if f > 1 else a


def overlay(img: np.ndarray, ids: np.ndarray, segs: list[dict], categories: dict, alpha: float = 0.55) -> Image.Image:
    """Image blended with each segment's category color, white boundaries and "name" labels."""
    lab = label_map(ids, np.asarray([s["id"] for s in segs], np.uint32))
    f = max(1, 256 // max(ids.shape))
    lab, img = _upscale(lab, f), _upscale(img, f)
    lut = np.zeros((len(segs) + 1, 3), np.float32)
    for k, s in enumerate(segs):
        c = categories.get(s["category_id"], {})
        lut[k + 1] = c.get("color") or color_of(s["category_id"])
    colored = lut[lab]
    out = np.where((lab > 0)[..., None], (1 - alpha) * img + alpha * colored, img * 0.5).astype(np.float32)
    out[_boundaries(lab)] = 255
    pil = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for k, s in enumerate(segs):
        ys, xs = np.nonzero(lab == k + 1)
        if len(ys) < 30:
            continue
        name = categories.get(s["category_id"], {}).get("name", str(s["category_id"]))
        draw.text((int(xs.mean()) - 3 * len(name), int(ys.mean()) - 5), name + ("*" if s.get("iscrowd") else ""),
                  fill=(255, 255, 255))
    return pil


def error_map(img: np.ndarray, gt_ids, gt_segs, pred_ids, pred_segs, categories: dict) -> tuple[Image.Image, dict]:
    """Green: matched (TP) pixels, red: missed GT (FN), blue: false-positive predictions, gray: VOID."""
    cats = Categories([{"id": k, **v} for k, v in categories.items()])
    st = image_stats(gt_ids, gt_segs, pred_ids, pred_segs, cats, where="visualize")
    matched_gt, matched_pred = set(st["matches"][0].tolist()), set(st["matches"][1].tolist())
    f = max(1, 256 // max(gt_ids.shape))
    base = _upscale(img, f).astype(np.float32) * 0.45
    color = np.zeros_like(base)
    paint = np.zeros(base.shape[:2], bool)
    gt_up, pred_up = _upscale(gt_ids, f), _upscale(pred_ids, f)
    for s in gt_segs:
        if s.get("iscrowd"):
            continue
        m = gt_up == s["id"]
        color[m] = ERROR_COLORS["tp" if s["id"] in matched_gt else "fn"]
        paint |= m
    fp = 0
    for s in pred_segs:
        if s["id"] in matched_pred:
            continue
        m = (pred_up == s["id"]) & ~np.isin(gt_up, list({g["id"] for g in gt_segs if g["id"] in matched_gt}))
        color[m] = ERROR_COLORS["fp"]
        paint |= m
        fp += 1
    color[gt_up == 0] = ERROR_COLORS["void"]
    paint |= gt_up == 0
    out = np.where(paint[..., None], base + 0.55 * color, base * 2)
    counts = {"tp": len(matched_gt), "fn": len(st["fn"]), "fp": len(st["fp"])}
    pil = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(pil).text((3, 3), f"TP {counts['tp']}  FP {counts['fp']}  FN {counts['fn']}", fill=(255, 255, 255))
    return pil, counts


def visualize(dataset, out_dir: Path, n: int = 8, predictions: dict | None = None, pred_dir: str = "",
              alpha: float = 0.55) -> dict[str, float]:
    """Write overlays/<name>.png for n images (and errors/, pred/ when a prediction folder is given)."""
    from .panoptic import read_ids

    cats = {c["id"]: c for c in dataset.categories}
    totals = {"tp": 0, "fp": 0, "fn": 0}
    n = min(n, len(dataset))
    for i in range(n):
        img, ids, rec = dataset.raw(i)
        stem = Path(rec["png"]).stem
        save_png(overlay(img, ids, rec["segments_info"], cats, alpha), out_dir / "overlays" / f"{stem}.png")
        if predictions is not None:
            pred = predictions.get(rec["image_id"])
            if pred is None:
                continue
            pids = read_ids(Path(pred_dir) / pred["file_name"])
            save_png(overlay(img, pids, pred["segments_info"], cats, alpha), out_dir / "pred" / f"{stem}.png")
            pil, counts = error_map(img, ids, rec["segments_info"], pids, pred["segments_info"], cats)
            save_png(pil, out_dir / "errors" / f"{stem}.png")
            for k in totals:
                totals[k] += counts[k]
    out = {"visualized": float(n)}
    if predictions is not None:
        out.update({f"vis_{k}": float(v) for k, v in totals.items()})
    return out
