"""A plain per-segment loop written the way panopticapi's pq_compute_single_core does it (test reference)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

OFFSET = 256 * 256 * 256
VOID = 0


def reference_pq_image(pan_gt, gt_segs, pan_pred, pred_segs, stat, categories=None):
    """panopticapi's pq_compute_single_core body for one image; with `categories`, also its prediction input
    checks (KeyError), done inside the same np.unique pass as panopticapi does them."""
    gt_segms = {el["id"]: dict(el) for el in gt_segs}
    pred_segms = {el["id"]: dict(el) for el in pred_segs}
    unseen = set(pred_segms)
    labels, labels_cnt = np.unique(pan_pred, return_counts=True)
    for label, label_cnt in zip(labels, labels_cnt):
        if label == VOID:
            continue
        if categories is not None and label not in pred_segms:
            raise KeyError(f"segment {label} in PNG, not in JSON")
        pred_segms[label]["area"] = label_cnt
        unseen.discard(label)
        if categories is not None and pred_segms[label]["category_id"] not in categories:
            raise KeyError("unknown category")
    if categories is not None and unseen:
        raise KeyError("segments in JSON, not in PNG")
    pan_gt_pred = pan_gt.astype(np.uint64) * OFFSET + pan_pred.astype(np.uint64)
    gt_pred_map = {}
    labels, labels_cnt = np.unique(pan_gt_pred, return_counts=True)
    for label, intersection in zip(labels, labels_cnt):
        gt_pred_map[(label // OFFSET, label % OFFSET)] = intersection
    gt_matched, pred_matched = set(), set()
    for (gt_label, pred_label), intersection in gt_pred_map.items():
        if gt_label not in gt_segms or pred_label not in pred_segms:
            continue
        if gt_segms[gt_label]["iscrowd"] == 1:
            continue
        if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
            continue
        union = (pred_segms[pred_label]["area"] + gt_segms[gt_label]["area"] - intersection
                 - gt_pred_map.get((VOID, pred_label), 0))
        iou = intersection / union
        if iou > 0.5:
            s = stat[gt_segms[gt_label]["category_id"]]
            s["tp"] += 1
            s["iou"] += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)
    crowd = {}
    for gt_label, gt_info in gt_segms.items():
        if gt_label in gt_matched:
            continue
        if gt_info["iscrowd"] == 1:
            crowd[gt_info["category_id"]] = gt_label
            continue
        stat[gt_info["category_id"]]["fn"] += 1
    for pred_label, pred_info in pred_segms.items():
        if pred_label in pred_matched:
            continue
        intersection = gt_pred_map.get((VOID, pred_label), 0)
        if pred_info["category_id"] in crowd:
            intersection += gt_pred_map.get((crowd[pred_info["category_id"]], pred_label), 0)
        if intersection / pred_info["area"] > 0.5:
            continue
        stat[pred_info["category_id"]]["fp"] += 1


def new_stat():
    return defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})


def reference_average(stat, categories, isthing=None):
    pq = sq = rq = n = 0
    for c in categories:
        if isthing is not None and (c["isthing"] == 1) != isthing:
            continue
        s = stat[c["id"]]
        tp, fp, fn, iou = s["tp"], s["fp"], s["fn"], s["iou"]
        if tp + fp + fn == 0:
            continue
        n += 1
        pq += iou / (tp + 0.5 * fp + 0.5 * fn)
        sq += iou / tp if tp else 0
        rq += tp / (tp + 0.5 * fp + 0.5 * fn)
    return (pq / n, sq / n, rq / n) if n else (0.0, 0.0, 0.0)


def reference_trace_loops(mask: np.ndarray) -> list[np.ndarray]:
    """Closed loops of pixel-corner vertices around a boolean mask, foreground on the right.

    Outer boundaries have positive shoelace area (y axis down), holes negative. At a corner shared
    by two diagonal pixels the walk turns right, so 4-connected parts get separate loops.
    """
    m = np.pad(np.asarray(mask, bool), 1)
    fg = m[1:-1, 1:-1]
    ends: dict[tuple[int, int], list[tuple[int, int]]] = {}
    sides = ((m[:-2, 1:-1], (0, 0), (1, 0)), (m[1:-1, 2:], (1, 0), (1, 1)),
             (m[2:, 1:-1], (1, 1), (0, 1)), (m[1:-1, :-2], (0, 1), (0, 0)))
    for neighbour, (ax, ay), (bx, by) in sides:
        rr, cc = np.nonzero(fg & ~neighbour)
        for r, c in zip(rr.tolist(), cc.tolist()):
            ends.setdefault((c + ax, r + ay), []).append((c + bx, r + by))
    loops = []
    while ends:
        start = next(iter(ends))
        first = ends[start].pop()
        if not ends[start]:
            del ends[start]
        pts, v, d = [start], first, (first[0] - start[0], first[1] - start[1])
        while True:
            cands = list(ends.get(v, ()))
            if v == start:
                cands.append(first)
            if len(cands) == 1:
                nxt = cands[0]
            else:  # prefer the right turn, then straight, then left
                right, straight = (-d[1], d[0]), d
                by_dir = {(e[0] - v[0], e[1] - v[1]): e for e in cands}
                nxt = by_dir.get(right) or by_dir.get(straight) or cands[0]
            if v == start and nxt == first:
                break
            ends[v].remove(nxt)
            if not ends[v]:
                del ends[v]
            pts.append(v)
            d, v = (nxt[0] - v[0], nxt[1] - v[1]), nxt
        loops.append(np.asarray(pts, np.float64))
    return loops
