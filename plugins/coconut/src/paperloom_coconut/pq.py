"""Panoptic quality exactly as panopticapi's ``pq_compute`` defines it, plus mIoU and mask/box AP.

Per image (vectorized numpy, `image_stats`): one joint histogram of (GT segment, predicted
segment) pixel pairs gives every intersection, the prediction's VOID overlap and the semantic
confusion at once. The semantics follow panopticapi (Kirillov et al., "Panoptic Segmentation",
Eq. 1; COCO's implementation):

* a pair matches when categories agree, the GT is not crowd and IoU > 0.5, where
  ``union = pred_area + gt_area - intersection - (pred overlap with VOID)``;
  GT areas are the JSON ``area`` fields, predicted areas are counted from the PNG;
* an unmatched non-crowd GT is a FN; an unmatched prediction is a FP unless more than half
  of it lies on VOID plus the (last listed) crowd segment of its category;
* per class ``PQ = sum IoU / (TP + FP/2 + FN/2)``, ``SQ = sum IoU / TP``, ``RQ = TP / (TP + FP/2 + FN/2)``,
  averaged over classes with TP + FP + FN > 0 (All / Things / Stuff).

Statistics are additive (`Accumulator.merge`); IoU sums are kept as exact float expansions, so a
split evaluated in shards and merged gives bit-identical numbers to one pass.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from paperloom import UserError

from .panoptic import OFFSET, check_segment_ids, label_map, read_pixels, rgb2id

PARTIAL_FORMAT = "paperloom-coconut-partial"


# --------------------------------------------------------------------------- exact sums


def grow(partials: list[float], x: float) -> None:
    """Add x to a non-overlapping float expansion in place (Shewchuk; what math.fsum does inside)."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def class_sums(cat: np.ndarray, iou: np.ndarray) -> list[tuple[int, list[float]]]:
    """Per class k in `cat`, the exact sum of its IoUs as a few floats whose sum is exact: [(k, terms)].
    A TP's IoU lies in (0.5, 1], where every double is a multiple of 2^-53, so the sum is an integer count of
    2^-53 (int64 while a class has < 1024 values here); anything else takes the expansion (`grow`) path."""
    if not len(iou):
        return []
    order = np.argsort(cat, kind="stable")
    c = cat[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    if iou.min() < 0.5 or np.diff(np.r_[starts, len(c)]).max() >= 1024:
        sums: dict[int, list[float]] = {}
        for k, v in zip(cat.tolist(), iou.tolist()):
            grow(sums.setdefault(k, []), v)
        return list(sums.items())
    units = np.add.reduceat((iou[order] * 2.0**53).astype(np.int64), starts)  # exact: each is m * 2^-53
    out = []
    for k, u in zip(c[starts].tolist(), units.tolist()):
        hi = float(u)  # u has up to 63 bits: hi + lo holds it exactly; scaling by 2^-53 is exact too
        out.append((k, [hi * 2.0**-53, (u - int(hi)) * 2.0**-53]))
    return out


# --------------------------------------------------------------------------- categories


class Categories:
    """Category ids <-> contiguous indices, and which are things."""

    def __init__(self, cats: list[dict], where: str = "categories") -> None:
        require_isthing(cats, where)
        cats = sorted(({"id": int(c["id"]), "name": c.get("name", str(c["id"])), "isthing": int(c["isthing"])}
                       for c in cats), key=lambda c: c["id"])
        self.cats = cats
        self.ids = np.asarray([c["id"] for c in cats], np.int64)
        self.isthing = np.asarray([c["isthing"] for c in cats], bool)
        if len(self.ids) and self.ids.min() < 0:
            raise UserError(f"{where}: category id {int(self.ids.min())} is negative; category ids are >= 0")
        self.lut = [-1] * (int(self.ids.max(initial=0)) + 1)  # category id -> index, -1 where none
        for k, c in enumerate(cats):
            self.lut[c["id"]] = k

    def __len__(self) -> int:
        return len(self.cats)

    def index(self, cat_ids, where: str = "", unknown_ok: bool = False) -> np.ndarray:
        """Contiguous indices; an unknown id is an error, or -1 with `unknown_ok`. (An image's few dozen ids:
        a Python list lookup costs less than numpy's per-call checks.)"""
        ids, lut = np.asarray(cat_ids, np.int64).ravel().tolist(), self.lut
        idx = [lut[c] if 0 <= c < len(lut) else -1 for c in ids]
        if not unknown_ok and -1 in idx:
            bad = ids[idx.index(-1)]
            raise UserError(f"{where}: category_id {bad} is not one of the {len(self)} known categories")
        return np.array(idx, np.int64)


def require_isthing(cats: list[dict], where: str) -> None:
    """panopticapi splits Things / Stuff by `isthing` and fails without it; say so instead of guessing stuff."""
    for c in cats:
        if "isthing" not in c:
            raise UserError(f"{where}: category {c.get('id')} ({c.get('name', '?')}) has no 'isthing'; add "
                            "isthing: 1 (thing) or 0 (stuff) to every category")


# --------------------------------------------------------------------------- odd inputs

# Inputs panopticapi's pq_compute evaluates although they are inconsistent; evaluated the same way, counted,
# reported as warnings (``strict`` makes each an error). name -> what it is, and what panopticapi does with it.
ODDITIES = {
    "gt_id_not_in_json": "a ground-truth PNG id absent from segments_info (its pixels match nothing and are not "
                         "VOID)",
    "gt_segment_not_in_png": "a ground-truth segment listed in segments_info with no pixel (a false negative "
                             "unless crowd)",
    "gt_unknown_category": "a ground-truth segment whose category_id is not in categories (ignored like an "
                           "unlisted id)",
    "gt_duplicate_id": "a segment id listed twice in a ground-truth segments_info (the last entry counts)",
    "pred_duplicate_id": "a segment id listed twice in a prediction's segments_info (the last entry counts)",
    "pred_duplicate_image": "two prediction annotations for one image_id (the last one counts)",
    "annotation_without_image": "a ground-truth annotation whose image_id is not in 'images' (evaluated anyway)",
}


def note_odd(odd: dict, name: str, count: int, example: str, strict: bool) -> None:
    """Count an oddity (first example kept); with `strict`, raise it as the error it is."""
    if count <= 0:
        return
    if strict:
        raise UserError(f"{example}: {ODDITIES[name]}; fix the input, or set strict=false to evaluate it as "
                        "panopticapi does")
    entry = odd.setdefault(name, [0, example])
    entry[0] += count


def merge_odd(into: dict, other: dict) -> None:
    for name, (count, example) in other.items():
        entry = into.setdefault(name, [0, example])
        entry[0] += count


def odd_warnings(odd: dict) -> list[str]:
    """One line per oddity: count, meaning, first example, and how to make it an error."""
    return [f"{count} x {ODDITIES.get(name, name)}, e.g. {example}; evaluated as panopticapi does "
            "(set strict=true to make it an error)" for name, (count, example) in sorted(odd.items())]


def last_per_id(segs: list[dict]) -> tuple[list[dict], int, int | None]:
    """panopticapi keys segments by id ({id: segment}): a repeated id keeps its last entry.
    (segments, repeats, the first repeated id)."""
    by_id = {s["id"]: s for s in segs}
    if len(by_id) == len(segs):
        return segs, 0, None
    seen: set = set()
    first = next(s["id"] for s in segs if s["id"] in seen or seen.add(s["id"]))
    return list(by_id.values()), len(segs) - len(by_id), first


# --------------------------------------------------------------------------- per image


class SegmentColumns(NamedTuple):
    """A ground-truth segments_info as int64 columns (what `PanopticIndex` stores): ids, category ids, crowd
    flags, JSON areas (-1 = none). `image_stats` takes these or the list of dicts."""

    id: np.ndarray
    category_id: np.ndarray
    iscrowd: np.ndarray
    area: np.ndarray

    @classmethod
    def of_index(cls, index, i: int) -> SegmentColumns:
        a, b = int(index.seg_start[i]), int(index.seg_start[i + 1])
        return cls(*(np.array(col[a:b], np.int64) for col in (index.seg_id, index.seg_cat, index.seg_crowd,
                                                               index.seg_area)))


def _gt_columns(segs, odd: dict, where: str, strict: bool) -> tuple[np.ndarray, ...]:
    """(ids, category ids, crowd, JSON areas) of the ground truth, a repeated id keeping its last entry at the
    place of its first (panopticapi's {id: segment} dict), the repeats counted as an oddity."""
    if not isinstance(segs, SegmentColumns):
        segs, rep, first = last_per_id(segs)
        note_odd(odd, "gt_duplicate_id", rep, f"{where} (ground truth) id {first}", strict)
        return _seg_arrays(segs)[:4]
    ids = segs.id.tolist()  # an image's few dozen ids: Python's set and min beat numpy's per-call costs
    if len(set(ids)) < len(ids):
        last = {v: k for k, v in enumerate(ids)}
        seen: set = set()
        first = next(v for v in ids if v in seen or seen.add(v))
        note_odd(odd, "gt_duplicate_id", len(ids) - len(last), f"{where} (ground truth) id {first}", strict)
        keep = [last[v] for v in dict.fromkeys(ids)]
        segs = SegmentColumns(*(col[keep] for col in segs))
    if ids and min(ids) <= 0:
        raise UserError("segment id 0 is VOID and cannot be listed in segments_info")
    return tuple(segs)


def _seg_arrays(segs: list[dict], scores: bool = True) -> tuple[np.ndarray, ...]:
    """(ids, category ids, crowd flags, JSON areas (-1 = none), scores or None) of a segments_info list."""
    ids, cat, crowd, area = np.array([[s["id"] for s in segs], [s["category_id"] for s in segs],  # by column:
                                      [s.get("iscrowd", 0) for s in segs],  # faster than rows of tuples
                                      [s.get("area", -1) for s in segs]], np.int64).reshape(4, -1)
    if len(ids) and ids.min() <= 0:
        raise UserError("segment id 0 is VOID and cannot be listed in segments_info")
    score = np.array([s.get("score", 1.0) for s in segs], np.float64) if scores else None
    return ids, cat, crowd, area, score


def _pred_columns(segs: list[dict], odd: dict, where: str, strict: bool, scores: bool) -> tuple:
    """(ids, category ids, scores or None) of a prediction's segments_info, a repeated id keeping its last entry
    (panopticapi's {id: segment}), the repeats counted as an oddity. Only what matching needs: this runs for
    every image, so plain lists for the few dozen segments (numpy's per-call costs are larger here)."""
    ids = [s["id"] for s in segs]
    if len(set(ids)) < len(ids):
        segs, rep, first = last_per_id(segs)
        note_odd(odd, "pred_duplicate_id", rep, f"{where} (prediction) id {first}", strict)
        ids = [s["id"] for s in segs]
    if ids and min(ids) <= 0:
        raise UserError("segment id 0 is VOID and cannot be listed in segments_info")
    score = np.array([s.get("score", 1.0) for s in segs], np.float64) if scores else None
    return np.array(ids, np.int64), [s["category_id"] for s in segs], score


def image_stats(gt_ids: np.ndarray, gt_segs: list[dict], pred_ids: np.ndarray, pred_segs: list[dict],
                cats: Categories, want_ap: bool = False, image_id=0, where: str = "", strict: bool = False,
                backend: str = "auto") -> dict:
    """Everything one image contributes: TP (class, IoU), FP / FN classes, semantic confusion, AP items, and
    the ground-truth oddities panopticapi tolerates (`ODDITIES`; errors with `strict`). `backend` as in
    `joint_histogram` ("numpy": the numpy histogram and matching; "auto": the compiled ones when built)."""
    keep_freed_memory()
    if gt_ids.shape[:2] != pred_ids.shape[:2]:
        raise UserError(f"{where}: prediction PNG is {pred_ids.shape[1]}x{pred_ids.shape[0]} but ground truth is "
                        f"{gt_ids.shape[1]}x{gt_ids.shape[0]}; predictions must have the image's size")
    odd: dict = {}
    g_id, g_cid, g_crowd, g_jarea = _gt_columns(gt_segs, odd, where, strict)
    p_id, p_cid, p_score = _pred_columns(pred_segs, odd, where, strict, scores=want_ap)
    g_cat = cats.index(g_cid, f"{where} (ground truth)", unknown_ok=True)
    if (g_cat < 0).any():  # panopticapi never matches them and averages over known classes only: drop them
        known = g_cat >= 0
        note_odd(odd, "gt_unknown_category", int((~known).sum()),
                 f"{where} (ground truth) segment {int(g_id[~known][0])} category_id {int(g_cid[~known][0])}", strict)
        dropped = set(g_id[~known].tolist())  # their pixels become unlisted ones, not counted twice below
        g_id, g_cid, g_crowd, g_jarea, g_cat = g_id[known], g_cid[known], g_crowd[known], g_jarea[known], g_cat[known]
    else:
        dropped = set()
    p_cat = cats.index(p_cid, f"{where} (prediction)")
    kg, kp = len(g_id), len(p_id)
    # Unlisted GT ids (and dropped segments) get label kg + 1: they are neither VOID nor any GT segment.
    counts, gl, pl = joint_histogram(gt_ids, g_id, pred_ids, p_id, where, labels=want_ap, backend=backend)
    if counts[kg + 1].any():  # rare: find which ids the JSON lacks
        orphan_ids = set(np.unique(as_ids(gt_ids)).tolist()) - set(g_id.tolist()) - dropped - {0}
        if orphan_ids:
            note_odd(odd, "gt_id_not_in_json", len(orphan_ids),
                     f"{where} (ground truth) id {min(orphan_ids)}", strict)
    if backend != "numpy" and _MATCH is not None and not want_ap:  # the compiled twin of the code below
        return _matched_compiled(counts, g_id, g_cat, g_crowd, g_jarea, p_id, p_cat, cats, odd, where, strict,
                                 image_id, gt_ids.shape[:2])
    p_area = counts[:, 1:].sum(0)  # every pixel of the prediction, whatever lies under it
    counts = counts[: kg + 1]  # the unlisted row takes no further part (panopticapi skips ids not in the JSON)
    g_pix = counts[1:, :].sum(1)
    if (p_area == 0).any():
        raise UserError(f"{where} (prediction): segment id {int(p_id[np.flatnonzero(p_area == 0)[0]])} is in the "
                        "JSON segments_info but not in the PNG")
    if (g_pix == 0).any():
        missing = np.flatnonzero(g_pix == 0)
        note_odd(odd, "gt_segment_not_in_png", len(missing),
                 f"{where} (ground truth): segment id {int(g_id[missing[0]])} is in the JSON segments_info but not "
                 "in the PNG", strict)
    g_area = np.where(g_jarea >= 0, g_jarea, g_pix)  # panopticapi takes GT areas from the JSON
    inter, void_p = counts[1:, 1:], counts[0, 1:]
    cand = (g_cat[:, None] == p_cat[None, :]) & (g_crowd[:, None] != 1) & (inter > 0)
    union = p_area[None, :] + g_area[:, None] - inter - void_p[None, :]
    iou = np.zeros(inter.shape, np.float64)
    np.divide(inter, union, out=iou, where=cand)
    match = iou > 0.5
    gi, pj = np.nonzero(match)
    g_matched, p_matched = match.any(1), match.any(0)
    fn = g_cat[~g_matched & (g_crowd != 1)]
    crowd_row = np.full(len(cats), -1, np.int64)
    for r in np.flatnonzero(g_crowd == 1):  # the last crowd segment of a class wins, as in panopticapi
        crowd_row[g_cat[r]] = r
    on_ignored = void_p.astype(np.int64).copy()
    cr = crowd_row[p_cat] if kp else np.zeros(0, np.int64)
    has = cr >= 0
    if has.any():
        on_ignored[has] += inter[cr[has], np.flatnonzero(has)]
    fp = p_cat[~p_matched & ~(on_ignored / np.maximum(p_area, 1) > 0.5)]
    # semantic confusion from the same histogram: GT class rows (VOID ignored), pred class cols (+1: VOID)
    rows, cols = np.nonzero(counts[1:])
    conf = (g_cat[rows], np.append(p_cat, len(cats))[cols - 1], counts[1:][rows, cols])  # column 0 -> VOID class
    out = {"image_id": image_id, "tp_cat": g_cat[gi], "tp_iou": iou[gi, pj], "fp": fp, "fn": fn, "conf": conf,
           "matches": (g_id[gi], p_id[pj]), "shape": gt_ids.shape[:2], "odd": odd}
    if want_ap:
        out["ap"] = _ap_items(gl, pl, g_cat, g_crowd, g_pix, p_cat, p_score, p_area, cats, image_id)
    return out


def _matched_compiled(counts, g_id, g_cat, g_crowd, g_jarea, p_id, p_cat, cats, odd, where, strict, image_id,
                      shape) -> dict:
    """image_stats' matching by the compiled `match_segments` (same results as the numpy code, tested)."""
    kg, kp = len(g_id), len(p_id)
    tp, iou = np.empty(2 * kg * kp, np.int64), np.empty(kg * kp, np.float64)
    fn, fp, conf = np.empty(kg, np.int64), np.empty(kp, np.int64), np.empty(3 * kg * (kp + 1), np.int64)
    n_tp, n_fn, n_fp, n_conf, absent_p, n_absent_g, first_absent_g = _MATCH(
        counts, g_cat, np.ascontiguousarray(g_crowd), np.ascontiguousarray(g_jarea), p_cat, len(cats), tp, iou, fn,
        fp, conf)
    if absent_p >= 0:
        raise UserError(f"{where} (prediction): segment id {int(p_id[absent_p])} is in the JSON segments_info but "
                        "not in the PNG")
    if n_absent_g:
        note_odd(odd, "gt_segment_not_in_png", n_absent_g, f"{where} (ground truth): segment id "
                 f"{int(g_id[first_absent_g])} is in the JSON segments_info but not in the PNG", strict)
    gi, pj = tp[0:2 * n_tp:2], tp[1:2 * n_tp:2]
    rows, cols, pixels = conf[0:3 * n_conf:3], conf[1:3 * n_conf:3], conf[2:3 * n_conf:3]
    return {"image_id": image_id, "tp_cat": g_cat[gi], "tp_iou": iou[:n_tp].copy(), "fp": p_cat[fp[:n_fp]],
            "fn": g_cat[fn[:n_fn]], "conf": (g_cat[rows], np.append(p_cat, len(cats))[cols - 1], pixels.copy()),
            "matches": (g_id[gi], p_id[pj]), "shape": shape, "odd": odd}


def joint_histogram(gt: np.ndarray, g_id, pred: np.ndarray, p_id, where: str = "", labels: bool = False,
                    backend: str = "auto") -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pixel counts of every (GT segment, predicted segment) pair: a (kg + 2, kp + 1) int64 table with row 0 /
    column 0 = VOID and row kg + 1 = GT pixels whose id `g_id` lacks; with `labels`, also the int16 label maps
    (segment index + 1 per pixel). `gt` and `pred` are (H, W) ids or a PNG's (H, W, 3|4) uint8 pixels (alpha
    ignored), as `read_pixels` gives them.

    backend "c": the compiled one-pass kernel (`_kernels.c`, built at install); "numpy": label maps
    through an id table and a bincount (about ten passes); "auto": the kernel when it was built. A prediction id
    the JSON lacks is an error either way."""
    if backend == "c" and _KERNEL is None:
        raise UserError("the compiled joint-histogram kernel is not built; reinstall paperloom-coconut with a C "
                        "compiler, or use backend='numpy'")
    g_id, p_id = np.ascontiguousarray(g_id, np.int64), np.ascontiguousarray(p_id, np.int64)
    kg, kp = len(g_id), len(p_id)
    if backend == "numpy" or _KERNEL is None:
        check_segment_ids(g_id, f"{where} (ground truth)"), check_segment_ids(p_id, f"{where} (prediction)")
        gl = label_map(as_ids(gt), g_id, f"{where} (ground truth)", orphan=kg + 1)
        pl = label_map(as_ids(pred), p_id, f"{where} (prediction)")
        joint = np.multiply(gl, np.int32(kp + 1), dtype=np.int32)  # < 2^30: labels are int16
        joint += pl  # in place: one pass each, no int64 temporaries
        counts = np.bincount(joint.ravel(), minlength=(kg + 2) * (kp + 1))[: (kg + 2) * (kp + 1)]
        return counts.reshape(kg + 2, kp + 1), (gl if labels else None), (pl if labels else None)
    (g_bytes, stride), (p_bytes, p_stride) = _pixel_bytes(gt), _pixel_bytes(pred)
    if p_stride != stride:  # one RGB and one RGBA file (or ids): both as 4-byte words
        (g_bytes, stride), (p_bytes, _) = _pixel_bytes(as_ids(gt)), _pixel_bytes(as_ids(pred))
    hw = gt.shape[:2]
    counts = np.zeros((kg + 2) * (kp + 1), np.int64)
    gl, pl = (np.empty(hw, np.int16), np.empty(hw, np.int16)) if labels else (None, None)
    try:
        unknown = _KERNEL(g_bytes, p_bytes, stride, g_id, p_id, counts, gl, pl)
    except ValueError:  # the kernel checks the ids too (range, repeats, count): say which and how
        check_segment_ids(g_id, f"{where} (ground truth)"), check_segment_ids(p_id, f"{where} (prediction)")
        raise
    if unknown:
        raise UserError(f"{where} (prediction): segment id {unknown} is in the PNG but not in the JSON segments_info")
    return counts.reshape(kg + 2, kp + 1), gl, pl


def as_ids(x) -> np.ndarray:
    """(H, W) uint32 ids of ids (any integer dtype, in 0..256^3-1; uint32 alpha bits are dropped) or of a PNG's
    (H, W, 3|4) uint8 pixels."""
    x = np.asarray(x)
    if x.ndim == 3:
        return rgb2id(x)
    if x.dtype == np.uint32:
        return x & np.uint32(0xFFFFFF)
    if x.size and (x.min() < 0 or x.max() >= OFFSET):
        raise UserError("segment ids must lie in 0..256^3-1 (R + 256*G + 256^2*B)")
    return x.astype(np.uint32)


def _pixel_bytes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(C-contiguous buffer, bytes per pixel) for the kernel: uint8 pixels as they are, ids as 4-byte words."""
    x = np.asarray(x)
    if x.ndim == 3 and x.dtype == np.uint8 and x.shape[2] in (3, 4):
        return np.ascontiguousarray(x), x.shape[2]
    if x.ndim == 3:
        raise UserError(f"pixels of shape {x.shape} ({x.dtype}); expected (H, W, 3 or 4) uint8 or (H, W) ids")
    if x.dtype != np.uint32:
        x = as_ids(x)
    return np.ascontiguousarray(x), 4


try:
    from ._kernels import joint_histogram as _KERNEL
    from ._kernels import match_segments as _MATCH
except ImportError:  # built without a C compiler: the numpy paths give the same results
    _KERNEL = _MATCH = None


def _rles(lab: np.ndarray, keep: np.ndarray) -> list[dict]:
    from pycocotools import mask as mask_utils

    if len(keep) == 0:
        return []
    masks = np.asfortranarray((lab[:, :, None] == (keep + 1)[None, None, :]).astype(np.uint8))
    rles = mask_utils.encode(masks)
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return rles


def _boxes(rles: list[dict]) -> list[list[float]]:
    from pycocotools import mask as mask_utils

    if not rles:
        return []
    return [[float(v) for v in b] for b in mask_utils.toBbox([dict(r, counts=r["counts"].encode()) for r in rles])]


def _ap_items(gl, pl, g_cat, g_crowd, g_pix, p_cat, p_score, p_area, cats: Categories, image_id) -> dict:
    gk = np.flatnonzero(cats.isthing[g_cat]) if len(g_cat) else np.zeros(0, np.int64)
    pk = np.flatnonzero(cats.isthing[p_cat]) if len(p_cat) else np.zeros(0, np.int64)
    g_rles, p_rles = _rles(gl, gk), _rles(pl, pk)
    gt = [{"image_id": image_id, "category_id": int(cats.ids[g_cat[k]]), "segmentation": r, "area": int(g_pix[k]),
           "bbox": b, "iscrowd": int(g_crowd[k] == 1)} for k, r, b in zip(gk, g_rles, _boxes(g_rles))]
    dt = [{"image_id": image_id, "category_id": int(cats.ids[p_cat[k]]), "segmentation": r, "score": float(p_score[k]),
           "bbox": b, "area": int(p_area[k])} for k, r, b in zip(pk, p_rles, _boxes(p_rles))]
    return {"height": int(gl.shape[0]), "width": int(gl.shape[1]), "gt": gt, "dt": dt}


# --------------------------------------------------------------------------- accumulation


@dataclass
class Accumulator:
    """Additive evaluation state: PQ counts and exact IoU sums per class, semantic confusion, AP items."""

    categories: list[dict]
    tp: np.ndarray = None
    fp: np.ndarray = None
    fn: np.ndarray = None
    iou: list = None
    conf: np.ndarray = None
    n_images: int = 0
    ap: dict | None = None
    shards: list = field(default_factory=list)
    odd: dict = field(default_factory=dict)  # ODDITIES name -> [count, first example]

    def __post_init__(self) -> None:
        self.cats = Categories(self.categories)
        c = len(self.cats)
        self.tp = np.zeros(c, np.int64) if self.tp is None else np.asarray(self.tp, np.int64)
        self.fp = np.zeros(c, np.int64) if self.fp is None else np.asarray(self.fp, np.int64)
        self.fn = np.zeros(c, np.int64) if self.fn is None else np.asarray(self.fn, np.int64)
        self.iou = [[] for _ in range(c)] if self.iou is None else [list(p) for p in self.iou]
        self.conf = np.zeros((c, c + 1), np.int64) if self.conf is None else np.asarray(self.conf, np.int64)

    def add(self, st: dict) -> None:
        c = len(self.cats)
        self.tp += np.bincount(st["tp_cat"], minlength=c)
        self.fp += np.bincount(st["fp"], minlength=c)
        self.fn += np.bincount(st["fn"], minlength=c)
        # exact per-class sums (a worker's chunk brings its own), merged exactly: a few terms a class
        for k, terms in st["iou_sums"] if "iou_sums" in st else class_sums(st["tp_cat"], st["tp_iou"]):
            for v in terms:
                grow(self.iou[k], v)
        r, col, v = st["conf"]
        # bincount's float weights are exact for pixel counts (< 2**53); np.add.at was ~1 ms per call
        self.conf += np.bincount(r * (c + 1) + col, weights=v, minlength=c * (c + 1)).astype(np.int64).reshape(c, c + 1)
        self.n_images += st.get("n_images", 1)
        merge_odd(self.odd, st.get("odd", {}))
        for image_id, a in st.get("ap_by_image", [(st.get("image_id"), st["ap"])] if "ap" in st else []):
            self.ap = self.ap or {"images": [], "gt": [], "dt": []}
            self.ap["images"].append({"id": image_id, "height": a["height"], "width": a["width"]})
            self.ap["gt"].extend(a["gt"])
            self.ap["dt"].extend(a["dt"])

    def merge(self, other: Accumulator) -> None:
        if [c["id"] for c in other.cats.cats] != [c["id"] for c in self.cats.cats]:
            raise UserError("cannot merge partial results computed with different category lists")
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        for mine, theirs in zip(self.iou, other.iou):
            for v in theirs:
                grow(mine, v)
        self.conf += other.conf
        self.n_images += other.n_images
        merge_odd(self.odd, other.odd)
        if other.ap is not None:
            self.ap = self.ap or {"images": [], "gt": [], "dt": []}
            for k in ("images", "gt", "dt"):
                self.ap[k].extend(other.ap[k])
        self.shards.extend(other.shards)

    # -- (de)serialization of a shard's partial result
    def to_json(self) -> dict:
        return {"format": PARTIAL_FORMAT, "version": 1, "categories": self.cats.cats, "n_images": self.n_images,
                "tp": self.tp.tolist(), "fp": self.fp.tolist(), "fn": self.fn.tolist(), "iou_partials": self.iou,
                "confusion": self.conf.tolist(), "ap": self.ap, "shards": self.shards, "oddities": self.odd}

    @classmethod
    def from_json(cls, d: dict, where: str = "") -> Accumulator:
        if d.get("format") != PARTIAL_FORMAT:
            raise UserError(f"{where} is not a partial result of coconut evaluation (format {d.get('format')!r})")
        return cls(d["categories"], d["tp"], d["fp"], d["fn"], d["iou_partials"], d["confusion"], d["n_images"],
                   d.get("ap"), list(d.get("shards", [])), dict(d.get("oddities", {})))

    # -- final numbers
    def iou_sums(self) -> np.ndarray:
        """Exactly rounded sums (math.fsum of the exact expansions): independent of image and shard order.
        panopticapi adds the IoUs one by one, so its sums can differ from these in the last digits."""
        return np.asarray([math.fsum(p) for p in self.iou], np.float64)

    def pq_per_class(self) -> dict[int, dict]:
        out, iou = {}, self.iou_sums()
        for k, c in enumerate(self.cats.cats):
            tp, fp, fn = int(self.tp[k]), int(self.fp[k]), int(self.fn[k])
            denom = tp + 0.5 * fp + 0.5 * fn
            out[c["id"]] = {"name": c["name"], "isthing": c["isthing"], "tp": tp, "fp": fp, "fn": fn,
                            "pq": iou[k] / denom if denom else 0.0, "sq": iou[k] / tp if tp else 0.0,
                            "rq": tp / denom if denom else 0.0, "counted": tp + fp + fn > 0}
        return out

    def pq(self) -> dict[str, float]:
        per = self.pq_per_class()
        out = {}
        for name, want in (("", None), ("_th", 1), ("_st", 0)):
            rows = [r for r in per.values() if r["counted"] and (want is None or r["isthing"] == want)]
            n = len(rows)
            for m in ("pq", "sq", "rq"):
                out[m + name] = sum(r[m] for r in rows) / n if n else 0.0
            out["n" + (name or "_all")] = float(n)
        return out

    def miou(self) -> dict[str, float]:
        c = len(self.cats)
        inter = np.diag(self.conf[:, :c]).astype(np.float64)
        gt_pix = self.conf.sum(1)
        pred_pix = self.conf[:, :c].sum(0)
        union = gt_pix + pred_pix - inter
        valid = union > 0
        total = self.conf.sum()
        return {"miou": float((inter[valid] / union[valid]).mean()) if valid.any() else 0.0,
                "pixel_acc": float(inter.sum() / total) if total else 0.0}

    def coco_ap(self) -> dict[str, float]:
        if not self.ap or not self.ap["gt"]:
            return {}
        return coco_ap(self.ap, [c for c in self.cats.cats if c["isthing"]])

    def metrics(self) -> dict[str, float]:
        out = {**self.pq(), **self.miou(), **self.coco_ap()}
        out["images"] = float(self.n_images)
        out.update({f"odd_{name}": float(count) for name, (count, _) in self.odd.items()})
        return out


def coco_ap(ap: dict, thing_cats: list[dict]) -> dict[str, float]:
    """Mask AP and box AP with pycocotools COCOeval on in-memory GT and detections."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = sorted(ap["images"], key=lambda im: str(im["id"]))
    order = {im["id"]: i for i, im in enumerate(images)}
    gts = sorted(ap["gt"], key=lambda a: order[a["image_id"]])  # stable: deterministic ids whatever the shard order
    dts = sorted(ap["dt"], key=lambda a: order[a["image_id"]])
    anns = [dict(a, id=i + 1) for i, a in enumerate(gts)]
    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "categories": thing_cats, "annotations": anns}
        coco.createIndex()
        for iou_type, prefix in (("segm", "ap"), ("bbox", "box_ap")):
            if iou_type == "segm":
                res = [{k: d[k] for k in ("image_id", "category_id", "segmentation", "score")} for d in dts]
            else:
                res = [{k: d[k] for k in ("image_id", "category_id", "bbox", "score")} for d in dts]
            if not res:
                out.update({prefix: 0.0, prefix + "50": 0.0, prefix + "75": 0.0})
                continue
            ev = COCOeval(coco, coco.loadRes(res), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out.update({prefix: max(0.0, float(ev.stats[0])), prefix + "50": max(0.0, float(ev.stats[1])),
                        prefix + "75": max(0.0, float(ev.stats[2]))})
    return out


# --------------------------------------------------------------------------- folders, shards, processes


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); ``"auto"`` reads torch.distributed / SLURM environment variables."""
    import os

    text = str(text).strip()
    if text == "auto":
        env = os.environ
        for rank, size in (("RANK", "WORLD_SIZE"), ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
                           ("SLURM_PROCID", "SLURM_NTASKS")):
            if rank in env and size in env:
                i, n = int(env[rank]), int(env[size])
                if rank == "SLURM_ARRAY_TASK_ID" and "SLURM_ARRAY_TASK_MIN" in env:
                    i -= int(env["SLURM_ARRAY_TASK_MIN"])
                return i, n
        return 0, 1
    i, sep, n = text.partition("/")
    try:
        i, n = int(i), int(n)
    except ValueError:
        raise UserError(f"shard = {text!r} is not valid; expected i/n such as 0/4, or auto") from None
    if not sep or n < 1 or not 0 <= i < n:
        raise UserError(f"shard = {text!r} is not valid; expected i/n with 0 <= i < n (e.g. 0/4), or auto")
    return i, n


def load_predictions(pred_json: str, pred_dir: str) -> dict:
    """image_id -> annotation dict (panopticapi prediction JSON: ``annotations`` with ``segments_info``)."""
    from pathlib import Path

    from paperloom.io import read_json

    data = read_json(pred_json)
    anns = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(anns, list):
        raise UserError(f"{pred_json}: expected a JSON with an 'annotations' list (COCO panoptic predictions)")
    if not Path(pred_dir).is_dir():
        raise UserError(f"prediction PNG folder {pred_dir} does not exist")
    out = Predictions((a["image_id"], a) for a in anns)  # panopticapi: {image_id: annotation}, the last one wins
    if len(out) != len(anns):
        seen: set = set()
        first = next(a["image_id"] for a in anns if a["image_id"] in seen or seen.add(a["image_id"]))
        out.duplicates = (len(anns) - len(out), f"{pred_json}: image_id {first}")
    return out


class Predictions(dict):
    """image_id -> prediction annotation; `duplicates` = (repeats, example) when an image_id came twice."""

    duplicates: tuple[int, str] | None = None


_MALLOC_TUNED = False


def keep_freed_memory() -> None:
    """Tell glibc's malloc to keep freed memory for reuse (no trimming, no mmap for blocks under 32 MB), once
    per process. Every image allocates and frees the same few MB (decoded PNGs, label maps, the joint
    histogram); with the default dynamic thresholds they were returned to the OS and faulted in again image
    after image in some runs (550K page faults, +40% CPU). Memory stays bounded by one image's peak."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 256 << 20)
    libc.mallopt(m_mmap_threshold, 32 << 20)


def _work(item) -> dict:
    keep_freed_memory()
    gt_png, gt_segs, pred_png, pred_segs, cats, want_ap, image_id, hw, strict = item
    where = f"image {image_id}"
    gt = read_pixels(gt_png, tuple(hw))  # as decoded: joint_histogram reads the RGB bytes, no id image is made
    st = image_stats(gt, gt_segs, read_pixels(pred_png), pred_segs, cats, want_ap, image_id, where, strict)
    st.pop("matches")
    return st


def _work_chunk(cats: Categories, items: list) -> dict:
    """Several images' statistics stacked into one (what `Accumulator.add` takes): a worker sends one small
    result per chunk instead of one per image."""
    sts = []
    for item in items:
        try:
            sts.append(_work(item[:4] + (cats,) + item[4:]))
        except UserError as exc:  # the chunk is the executor's item: name the image
            raise UserError(f"image {item[5]}: {exc}") from None
    odd: dict = {}
    for st in sts:
        merge_odd(odd, st["odd"])
    cat = functools.partial(np.concatenate, dtype=np.int64)
    tp_cat, tp_iou = cat([st["tp_cat"] for st in sts]), np.concatenate([st["tp_iou"] for st in sts])
    return {"tp_cat": tp_cat, "iou_sums": class_sums(tp_cat, tp_iou),  # here, not in the main process
            "fp": cat([st["fp"] for st in sts]), "fn": cat([st["fn"] for st in sts]),
            "conf": tuple(cat([st["conf"][k] for st in sts]) for k in range(3)), "odd": odd, "n_images": len(sts),
            "ap_by_image": [(st["image_id"], st["ap"]) for st in sts if "ap" in st]}


CHUNK = 32  # images per task: the main process pays ~1 ms a task (items, results), workers a little


def chunk_sizes(n: int, workers: int, largest: int = CHUNK, smallest: int = 4) -> list[int]:
    """Task sizes for `n` images over `workers` processes: `largest` while there is plenty left, then
    shrinking with what remains (guided self-scheduling: remaining / 2 workers), so that the workers finish
    within a few images of each other instead of one waiting out the other's last full task."""
    sizes, left = [], n
    while left > 0:
        size = largest if workers <= 1 else max(smallest, min(largest, -(-left // (2 * workers))))
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes


def evaluate_folder(index, predictions: dict, pred_dir: str, *, processes: int = 1, shard: tuple[int, int] = (0, 1),
                    want_ap: bool = True, limit: int = 0, progress=None, window: int = 16,
                    strict: bool = False, imap=None) -> Accumulator:
    """Evaluate a prediction folder against a `PanopticIndex`, streaming over images: `imap` (``ctx.imap``, so
    ``--executor ray`` reaches it; default the core's local executor with `processes` workers) keeps at most
    `window` chunks of up to `CHUNK` images in flight, so memory stays flat however large the split. Inputs that
    panopticapi evaluates although they are inconsistent (`ODDITIES`) are evaluated its way and counted in
    `Accumulator.odd`; with `strict` the first one is an error."""
    cats_list = [{"id": k, "name": c.get("name", str(k)), "isthing": int(c["isthing"])}
                 for k, c in index.categories.items()]
    acc = Accumulator(cats_list, shards=[[shard[0], shard[1], len(index)]])
    if shard[0] == 0:  # the split's own oddities, counted once over all shards
        for name, (count, example) in getattr(index, "oddities", {}).items():
            note_odd(acc.odd, name, count, example, strict)
    dup = getattr(predictions, "duplicates", None)
    if dup and shard[0] == 0:
        note_odd(acc.odd, "pred_duplicate_image", dup[0], dup[1], strict)
    i0, n = shard
    todo = [i for i in range(len(index)) if i % n == i0]  # interleaved shards: balanced, disjoint, complete
    todo = todo[:limit] if limit else todo

    png_dir, pred_dir = str(index.png_dir), str(pred_dir)

    def items(indices):
        for i in indices:  # the index's columns as they are: no per-segment dicts for the ground truth
            image_id = index.image_id[i].item()
            pred = predictions.get(image_id)
            if pred is None:
                raise UserError(f"no prediction for image_id {image_id} ({index.file_name[i].decode()}) "
                                "in the prediction JSON")
            yield (os.path.join(png_dir, index.png_name[i].decode()), SegmentColumns.of_index(index, i),
                   os.path.join(pred_dir, pred["file_name"]), pred["segments_info"], want_ap, image_id,
                   (int(index.height[i]), int(index.width[i])), strict)

    work = functools.partial(_work_chunk, Categories(cats_list))
    sizes = chunk_sizes(len(todo), processes)

    def chunks():
        stream = items(todo)
        for size in sizes:
            yield list(itertools.islice(stream, size))

    if imap is None:  # the core's map executor: local processes (or Ray) with a bounded window, results in order
        from paperloom.executor import imap_items

        imap = functools.partial(imap_items, workers=processes, progress=progress)
    for st in imap(work, chunks(), total=len(sizes), description=f"evaluating (up to {CHUNK} images a step)",
                   chunksize=1, window=window):
        acc.add(st)
    return acc
