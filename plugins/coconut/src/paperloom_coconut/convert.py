"""Harmonized conversions of COCONut panoptic labels: semantic PNGs, COCO instance JSON, boxes.

All three come from the same label map, so semantic, instance and panoptic annotations agree
(the paper's "harmonized" property). Instance masks are exact: a non-crowd thing becomes
polygons traced along pixel edges (one per connected part) when pycocotools rasterizes them back
to exactly the same pixels; a mask with holes or pinches that polygons cannot express becomes RLE.
Crowd segments are RLE. Areas are pixel counts; boxes are [x, y, w, h] without the +1.
The reference repository's converter lost occluded parts and extra contours (its issue #9);
here each segment is converted from its own pixels, independent of any other segment.
"""

from __future__ import annotations

import functools

import numpy as np

from .panoptic import VOID, bbox_of, check_present, label_map

IGNORE = 255


def semantic_map(ids: np.ndarray, segments: list[dict], cat_index: dict[int, int], where: str = "") -> np.ndarray:
    """Panoptic ids -> (H, W) uint8 category index (0..C-1), 255 on VOID. Crowd keeps its category."""
    lab = label_map(ids, np.asarray([s["id"] for s in segments], np.uint32), where)
    lut = np.full(len(segments) + 1, IGNORE, np.uint8)
    for k, s in enumerate(segments):
        lut[k + 1] = cat_index[s["category_id"]]
    return lut[lab]


# --------------------------------------------------------------------------- exact polygons


def trace_loops(mask: np.ndarray) -> list[np.ndarray]:
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
        loops.append(_drop_collinear(np.asarray(pts, np.float64)))
    return loops


def _drop_collinear(p: np.ndarray) -> np.ndarray:
    prev, nxt = np.roll(p, 1, 0), np.roll(p, -1, 0)
    cross = (p[:, 0] - prev[:, 0]) * (nxt[:, 1] - p[:, 1]) - (p[:, 1] - prev[:, 1]) * (nxt[:, 0] - p[:, 0])
    return p[cross != 0]


def signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def rasterize(segmentation, h: int, w: int) -> np.ndarray:
    """pycocotools' own rasterization of polygons or RLE (what COCOeval will see)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, h, w)
    else:
        rle = dict(segmentation, counts=segmentation["counts"].encode() if isinstance(segmentation["counts"], str)
                   else segmentation["counts"])
    return mask_utils.decode(rle).astype(bool)


def encode_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def mask_to_segmentation(mask: np.ndarray, crowd: bool = False) -> list | dict:
    """Exact COCO segmentation of a mask: polygons when they reproduce it pixel for pixel, else RLE."""
    if crowd:
        return encode_rle(mask)
    loops = trace_loops(mask)
    if loops and all(signed_area(p) > 0 for p in loops):
        polys = [p.ravel().tolist() for p in loops]
        if np.array_equal(rasterize(polys, *mask.shape), mask):
            return polys
    return encode_rle(mask)


# --------------------------------------------------------------------------- per image / per split


def instance_annotations(ids: np.ndarray, segments: list[dict], categories: dict, image_id, where: str = "",
                         with_masks: bool = True) -> list[dict]:
    """COCO instance annotations (things only) of one panoptic image; ids left for the caller."""
    seg_ids = np.asarray([s["id"] for s in segments], np.uint32)
    lab = label_map(ids, seg_ids, where)
    areas = check_present(lab, seg_ids, where)
    out = []
    for k, s in enumerate(segments):
        if not categories[s["category_id"]].get("isthing", 0):
            continue
        m = lab == k + 1
        ann = {"image_id": image_id, "category_id": s["category_id"], "iscrowd": int(s.get("iscrowd", 0)),
               "area": int(areas[k]), "bbox": bbox_of(m)}
        if with_masks:
            ann["segmentation"] = mask_to_segmentation(m, crowd=bool(s.get("iscrowd", 0)))
        out.append(ann)
    return out


def _convert_one(job: tuple) -> tuple[dict, list, int]:
    """One image (a worker's item): -> (its `images` entry, its annotations, VOID pixels written)."""
    from pathlib import Path

    from .panoptic import read_ids, save_png

    rec, to, cat_index, categories, out_dir = job
    ids = read_ids(rec["png"], (rec["height"], rec["width"]))
    image = {"id": rec["image_id"], "file_name": rec["file_name"], "height": int(ids.shape[0]),
             "width": int(ids.shape[1])}
    if to == "semantic":
        sem = semantic_map(ids, rec["segments_info"], cat_index, rec["png"])
        save_png(sem, Path(out_dir) / Path(rec["png"]).with_suffix(".png").name)
        return image, [], int((sem == IGNORE).sum())
    return image, instance_annotations(ids, rec["segments_info"], categories, rec["image_id"], rec["png"],
                                       with_masks=to == "instances"), 0


def convert_index(index, out_dir, to: str, progress=None, limit: int = 0, imap=None) -> dict[str, float]:
    """Convert a whole `PanopticIndex` (streaming) to semantic PNGs, an instance JSON or a boxes JSON. Images go
    through `imap` (``ctx.imap``: local worker processes or Ray, results in order; default one process)."""
    from pathlib import Path

    from paperloom.io import atomic_write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cats = sorted(index.categories.values(), key=lambda c: c["id"])
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    n = min(len(index), limit) if limit else len(index)
    if imap is None:
        from paperloom.executor import imap_items

        imap = functools.partial(imap_items, workers=1, progress=progress)
    jobs = ((index.record(i), to, cat_index, index.categories, str(out_dir)) for i in range(n))
    images, anns, void = [], [], 0
    for image, image_anns, image_void in imap(_convert_one, jobs, total=n, description=f"to {to}", chunksize=4):
        images.append(image)
        anns.extend(image_anns)
        void += image_void
    if to == "semantic":
        atomic_write_json(out_dir / "categories.json", {"ignore_label": IGNORE, "categories": [
            {"index": i, "id": c["id"], "name": c.get("name", ""), "isthing": int(c.get("isthing", 0))}
            for i, c in enumerate(cats)]})
        return {"images": float(n), "void_pixels": float(void)}
    for k, a in enumerate(anns):
        a["id"] = k + 1
    things = [{"id": c["id"], "name": c.get("name", ""), "supercategory": c.get("supercategory", "")}
              for c in cats if c.get("isthing", 0)]
    name = "instances.json" if to == "instances" else "boxes.json"
    atomic_write_json(out_dir / name, {"images": images, "annotations": anns, "categories": things})
    polys = sum(isinstance(a.get("segmentation"), list) for a in anns)
    return {"images": float(n), "instances": float(len(anns)), "polygon_instances": float(polys),
            "rle_instances": float(len(anns) - polys) if to == "instances" else 0.0}


__all__ = ["IGNORE", "VOID", "semantic_map", "trace_loops", "mask_to_segmentation", "instance_annotations",
           "convert_index", "rasterize", "encode_rle"]
