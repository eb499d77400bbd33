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

from paperloom import UserError

from .panoptic import VOID, check_present, label_map

IGNORE = 255


def semantic_map(ids: np.ndarray, segments: list[dict], cat_index: dict[int, int], where: str = "") -> np.ndarray:
    """Panoptic ids -> (H, W) uint8 category index (0..C-1), 255 on VOID. Crowd keeps its category."""
    lab = label_map(ids, np.asarray([s["id"] for s in segments], np.uint32), where)
    lut = np.full(len(segments) + 1, IGNORE, np.uint8)
    for k, s in enumerate(segments):
        lut[k + 1] = cat_index[s["category_id"]]
    return lut[lab]


# --------------------------------------------------------------------------- exact polygons


def trace_loops(mask: np.ndarray, backend: str = "auto") -> list[np.ndarray]:
    """Closed loops of pixel-corner vertices around a boolean mask, foreground on the right.

    Outer boundaries have positive shoelace area (y axis down), holes negative. At a corner shared
    by two diagonal pixels the walk turns right, so 4-connected parts get separate loops. Vertices where the
    boundary goes straight on are left out; each loop starts at its first top edge in raster order.

    backend "c": the compiled walk (`_kernels.c`); "numpy": every unit boundary edge gets its successor in one
    vectorized pass (the edge leaving its end vertex; at a pinch vertex the right turn), the loops are the
    cycles of that permutation; "auto": the compiled one when it was built. Both give the same loops.
    """
    if backend == "c" and _TRACE is None:
        raise UserError("the compiled polygon tracer is not built; reinstall paperloom-coconut with a C compiler, "
                        "or use backend='numpy'")
    if backend != "numpy" and _TRACE is not None:
        mask = np.ascontiguousarray(mask, bool)
        return [np.frombuffer(xy, np.float64).reshape(-1, 2) for xy, _ in _TRACE(mask, *mask.shape)]
    m = np.pad(np.asarray(mask, bool), 1)
    fg = m[1:-1, 1:-1]
    W = fg.shape[1] + 1  # vertices (x, y) of the pixel-corner grid, id = y * W + x
    starts, dirs = [], []
    # side k: pixels whose neighbour there is background; edge from corner (x + ax, y + ay), direction k
    # (0 = +x along the top, 1 = +y along the right, 2 = -x along the bottom, 3 = -y along the left)
    for k, (neighbour, (ax, ay)) in enumerate(((m[:-2, 1:-1], (0, 0)), (m[1:-1, 2:], (1, 0)),
                                               (m[2:, 1:-1], (1, 1)), (m[1:-1, :-2], (0, 1)))):
        rr, cc = np.nonzero(fg & ~neighbour)
        starts.append((rr + ay) * W + cc + ax)
        dirs.append(np.full(len(rr), k))
    start, d = np.concatenate(starts), np.concatenate(dirs)
    if len(start) == 0:
        return []
    step = np.array([1, W, -1, -W])
    end = start + step[d]
    key = start * 4 + d  # unique per edge
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    right = end * 4 + (d + 1) % 4  # the right turn (y down: +x -> +y -> -x -> -y)
    pos = np.minimum(np.searchsorted(sorted_key, right), len(key) - 1)
    has_right = sorted_key[pos] == right
    first_out = np.searchsorted(sorted_key, end * 4)  # else the one edge leaving the end vertex
    succ = np.where(has_right, order[pos], order[np.minimum(first_out, len(key) - 1)]).tolist()
    xy = np.stack([start % W, start // W], 1).astype(np.float64)
    seen = bytearray(len(succ))
    loops = []
    for i0 in range(len(succ)):
        if seen[i0]:
            continue
        cycle, i = [], i0
        while not seen[i]:
            seen[i] = 1
            cycle.append(i)
            i = succ[i]
        loops.append(_drop_collinear(xy[cycle]))
    return loops


def _drop_collinear(p: np.ndarray) -> np.ndarray:
    i = np.arange(len(p))
    prev, nxt = p[i - 1], p[(i + 1) % len(p)]  # index arrays: np.roll costs more than the arithmetic here
    cross = (p[:, 0] - prev[:, 0]) * (nxt[:, 1] - p[:, 1]) - (p[:, 1] - prev[:, 1]) * (nxt[:, 0] - p[:, 0])
    return p[cross != 0]


def signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    nxt = (np.arange(len(p)) + 1) % len(p)
    return 0.5 * float(np.sum(x * y[nxt] - x[nxt] * y))


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


def mask_to_segmentation(mask: np.ndarray, crowd: bool = False, offset: tuple[int, int] = (0, 0),
                         shape: tuple[int, int] | None = None) -> list | dict:
    """Exact COCO segmentation of a mask: polygons when they reproduce it pixel for pixel, else RLE.

    `mask` may be a crop (its box) of an image of `shape`, placed at `offset` = (x0, y0): tracing and the
    exactness check then cost the box, not the image (pycocotools' polygon rasterization commutes with
    integer translations: it scales coordinates by 5 and rounds, so a shift moves every pixel by the same
    amount; a test checks full-image rasterizations of masks at the image border too)."""
    shape = tuple(shape or mask.shape)
    if not crowd:
        polygons = _polygons(mask)  # a hole needs a clockwise loop, which COCO polygons cannot express
        if polygons and np.array_equal(rasterize(polygons, *mask.shape), mask):
            shift = np.asarray(offset, np.float64)
            return [(p.reshape(-1, 2) + shift).ravel().tolist() for p in polygons]
    return encode_rle_box(mask, offset, shape)


def _polygons(mask: np.ndarray) -> list[np.ndarray] | None:
    """The mask's loops as flat float64 [x0, y0, ...] arrays when every loop is an outer boundary, else None
    (a hole)."""
    if _TRACE is not None:  # the compiled walk returns the signed areas with the loops
        mask = np.ascontiguousarray(mask, bool)
        loops = _TRACE(mask, *mask.shape)
        if loops and all(area2 > 0 for _, area2 in loops):
            return [np.frombuffer(xy, np.float64) for xy, _ in loops]
        return None
    if has_hole(mask):  # cheaper than tracing a mask whose loops would be refused
        return None
    loops = trace_loops(mask, "numpy")
    return [p.ravel() for p in loops] if loops and all(signed_area(p) > 0 for p in loops) else None


try:
    from ._kernels import trace_loops as _TRACE
except ImportError:  # built without a C compiler: the numpy tracer gives the same loops
    _TRACE = None


def has_hole(mask: np.ndarray) -> bool:
    """Does the background inside the mask's box, padded by one pixel, fall apart into several 8-connected
    components (so that some background is enclosed by the 4-connected foreground)?"""
    from scipy import ndimage

    _, n = ndimage.label(~np.pad(mask, 1), structure=np.ones((3, 3), bool))
    return n > 1


def encode_rle_box(mask: np.ndarray, offset: tuple[int, int], shape: tuple[int, int]) -> dict:
    """COCO RLE of a box-sized mask placed at `offset` = (x0, y0) in an image of `shape`, without building the
    image-sized mask: the runs of the box's columns padded to the image height, column-major, compressed by
    pycocotools."""
    from pycocotools import mask as mask_utils

    (h, w), (x0, y0) = shape, offset
    cols = np.zeros((mask.shape[1], h), np.uint8)  # one row per image column of the box, top to bottom
    cols[:, y0:y0 + mask.shape[0]] = mask.T
    seq = cols.ravel()
    starts = np.concatenate([[0], np.flatnonzero(seq[1:] != seq[:-1]) + 1])
    runs = np.diff(np.concatenate([starts, [seq.size]])).tolist()
    if seq[0]:
        runs.insert(0, 0)  # COCO RLE starts with a background run
    runs[0] += x0 * h  # the image's columns left of the box
    tail = (w - x0 - mask.shape[1]) * h  # and right of it
    if len(runs) % 2:  # the last run is background
        runs[-1] += tail
    elif tail:
        runs.append(tail)
    rle = mask_utils.frPyObjects({"counts": runs, "size": [h, w]}, h, w)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


# --------------------------------------------------------------------------- per image / per split


def instance_annotations(ids: np.ndarray, segments: list[dict], categories: dict, image_id, where: str = "",
                         with_masks: bool = True) -> list[dict]:
    """COCO instance annotations (things only) of one panoptic image; ids left for the caller."""
    from scipy import ndimage

    seg_ids = np.asarray([s["id"] for s in segments], np.uint32)
    lab = label_map(ids, seg_ids, where)
    areas = check_present(lab, seg_ids, where)
    boxes = ndimage.find_objects(lab, max_label=len(segments))  # every segment's box, one pass over the image
    out = []
    for k, s in enumerate(segments):
        if not categories[s["category_id"]].get("isthing", 0):
            continue
        rows, cols = boxes[k]
        m = lab[rows, cols] == k + 1  # the segment inside its box: everything below costs the box only
        ann = {"image_id": image_id, "category_id": s["category_id"], "iscrowd": int(s.get("iscrowd", 0)),
               "area": int(areas[k]),
               "bbox": [float(cols.start), float(rows.start), float(m.shape[1]), float(m.shape[0])]}
        if with_masks:
            ann["segmentation"] = mask_to_segmentation(m, bool(s.get("iscrowd", 0)), (cols.start, rows.start),
                                                       lab.shape)
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
           "convert_index", "rasterize", "encode_rle_box"]
