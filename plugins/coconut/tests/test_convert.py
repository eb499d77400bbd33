"""The harmonized conversions: exact polygons or RLE, instance JSON = panoptic source, semantic PNGs, boxes."""

import json

import numpy as np
import pytest
from paperloom_coconut.components import build_panoptic
from paperloom_coconut.convert import convert_index, mask_to_segmentation, rasterize, semantic_map, trace_loops
from paperloom_coconut.panoptic import read_ids


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_polygons_or_rle_reproduce_masks_exactly(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        h, w = rng.integers(2, 25, 2)
        m = rng.random((h, w)) < rng.random()
        if m.any():
            seg = mask_to_segmentation(m)
            assert np.array_equal(rasterize(seg, h, w), m)
    ring = np.zeros((12, 12), bool)
    ring[2:10, 2:10] = True
    ring[4:8, 4:8] = False
    assert isinstance(mask_to_segmentation(ring), dict)  # a hole: RLE
    assert len(trace_loops(ring)) == 2
    parts = np.zeros((8, 8), bool)
    parts[1:3, 1:3] = parts[5:7, 4:8] = True
    assert isinstance(mask_to_segmentation(parts), list) and len(mask_to_segmentation(parts)) == 2


def test_instances_json_equals_panoptic_source(mini, tmp_path, ctx):
    from pycocotools.coco import COCO

    ix = build_panoptic(ctx, root=str(mini["fine"]), splits=["s"]).indexes[0]
    stats = convert_index(ix, tmp_path / "inst", "instances")
    assert stats["polygon_instances"] > 0 and stats["rle_instances"] > 0
    coco = COCO(str(tmp_path / "inst" / "instances.json"))
    checked = 0
    for i in range(len(ix)):
        rec = ix.record(i)
        ids = read_ids(rec["png"])
        for s in rec["segments_info"]:
            if not s["isthing"]:
                continue
            ann = next(a for a in coco.imgToAnns[rec["image_id"]] if a["category_id"] == s["category_id"]
                       and np.array_equal(coco.annToMask(a).astype(bool), ids == s["id"]))
            assert ann["area"] == int((ids == s["id"]).sum()) and ann["iscrowd"] == s["iscrowd"]
            assert isinstance(ann["segmentation"], dict) if s["iscrowd"] else True
            checked += 1
    assert checked == len(coco.anns)


def test_semantic_and_boxes(mini, tmp_path, ctx):
    ix = build_panoptic(ctx, root=str(mini["fine"]), splits=["s"]).indexes[0]
    convert_index(ix, tmp_path / "sem", "semantic")
    meta = json.loads((tmp_path / "sem" / "categories.json").read_text())
    rec = ix.record(0)
    from PIL import Image

    sem = np.asarray(Image.open(tmp_path / "sem" / rec["png"].split("/")[-1]))
    ids = read_ids(rec["png"])
    assert ((sem == 255) == (ids == 0)).all()
    index = {c["id"]: c["index"] for c in meta["categories"]}
    assert np.array_equal(sem, semantic_map(ids, rec["segments_info"], index))
    convert_index(ix, tmp_path / "box", "boxes")
    boxes = json.loads((tmp_path / "box" / "boxes.json").read_text())
    a = boxes["annotations"][0]
    m = read_ids(ix.record(0)["png"]) == next(s["id"] for s in ix.record(0)["segments_info"] if s["isthing"])
    ys, xs = np.nonzero(m)
    assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_a_png_whose_size_disagrees_with_the_json_is_an_error_everywhere(mini, tmp_path, ctx):
    """A 20x20 PNG whose JSON says 48x48: conversion, loading and evaluation all refuse it, naming the file."""
    import shutil

    from PIL import Image

    from paperloom import UserError

    root = tmp_path / "data"
    shutil.copytree(mini["fine"], root)
    ix = build_panoptic(ctx, root=str(root), splits=["s"]).indexes[0]
    rec = ix.record(0)
    Image.new("RGB", (20, 20)).save(rec["png"])
    msg = f"PNG is 20x20 but the JSON says {rec['width']}x{rec['height']}"
    with pytest.raises(UserError, match=msg):
        convert_index(ix, tmp_path / "sem", "semantic")
    with pytest.raises(UserError, match=msg):
        build_panoptic(ctx, root=str(root), splits=["s"]).raw(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_instances_from_boxes_rasterize_exactly_at_full_size(seed):
    """instance_annotations traces each segment inside its box: every polygon or RLE, rasterized by pycocotools
    at the full image size, equals the segment's pixels, also for segments touching the image border; boxes
    and areas are the pixels' own."""
    from paperloom_coconut.convert import instance_annotations

    rng = np.random.default_rng(seed)
    h, w = 23, 31
    lab = rng.integers(0, 7, (h // 3 + 1, w // 3 + 1)).repeat(3, 0).repeat(3, 1)[:h, :w]  # blocky regions
    lab[rng.random((h, w)) < 0.08] = rng.integers(0, 7)  # speckles: holes, pinches, several parts
    ids = (lab * 1000).astype(np.uint32)
    present = [v for v in np.unique(ids).tolist() if v]
    segments = [{"id": v, "category_id": 1, "iscrowd": int(i == 0)} for i, v in enumerate(present)]
    anns = instance_annotations(ids, segments, {1: {"isthing": 1}}, image_id=0)
    kinds = set()
    for ann, s in zip(anns, segments):
        m = ids == s["id"]
        assert np.array_equal(rasterize(ann["segmentation"], h, w), m), (seed, s)
        ys, xs = np.nonzero(m)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["area"] == m.sum()
        kinds.add(type(ann["segmentation"]).__name__)
    assert kinds == {"list", "dict"}  # both encodings exercised
    assert any(ann["bbox"][0] == 0 or ann["bbox"][1] == 0 or ann["bbox"][0] + ann["bbox"][2] == w
               for ann in anns if isinstance(ann["segmentation"], list))  # polygons at the border


def _canonical(loop):
    """A loop as a tuple of its corner vertices (collinear ones dropped), rotated to start at the smallest."""
    pts = [tuple(p) for p in np.asarray(loop).tolist()]
    corners = [p for i, p in enumerate(pts) if (p[0] - pts[i - 1][0]) * (pts[(i + 1) % len(pts)][1] - p[1])
               != (p[1] - pts[i - 1][1]) * (pts[(i + 1) % len(pts)][0] - p[0])]
    k = corners.index(min(corners))
    return tuple(corners[k:] + corners[:k])


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_trace_loops_equals_the_plain_boundary_walk(seed, backend):
    """The compiled walk and the vectorized successor tracing give the same loops (vertices, order,
    orientation) as the plain walk over a dict of boundary edges (tests/reference.py), on random masks with
    holes, pinches and many parts; and the two give them identically (same start, same order)."""
    from reference import reference_trace_loops
    from test_pq import kernel_built

    if backend == "c" and not kernel_built():
        pytest.skip("no C compiler: the numpy tracer is the one in use")
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w = rng.integers(1, 30, 2)
        m = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        loops = trace_loops(m, backend)
        want = sorted(_canonical(p) for p in reference_trace_loops(m))
        assert sorted(_canonical(p) for p in loops) == want
        if backend == "c":
            numpy_loops = trace_loops(m, "numpy")
            assert len(loops) == len(numpy_loops)
            assert all(np.array_equal(a, b) for a, b in zip(loops, numpy_loops))


def test_a_hole_is_a_negative_loop():
    """The compiled path refuses polygons for a mask with a negative (clockwise) loop instead of running the
    8-connected background labelling first: the two tests agree on random masks."""
    from paperloom_coconut.convert import _polygons, has_hole, signed_area
    from test_pq import kernel_built

    rng = np.random.default_rng(5)
    for _ in range(300):
        h, w = rng.integers(1, 20, 2)
        m = rng.random((h, w)) < rng.uniform(0.3, 0.9)
        if m.any():
            negative = any(signed_area(p) < 0 for p in trace_loops(m, "numpy"))
            assert negative == has_hole(m)
            if kernel_built():
                assert (_polygons(m) is None) == has_hole(m)
