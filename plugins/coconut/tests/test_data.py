"""Dataset loading (lazy index, merging, transforms, errors) and the harmonized conversions."""

import json
import shutil

import numpy as np
import pytest
import torch
from paperloom_coconut.convert import convert_index, mask_to_segmentation, rasterize, semantic_map, trace_loops
from paperloom_coconut.data import build_dataset, open_splits
from paperloom_coconut.panoptic import PanopticIndex, read_ids, write_ids

from paperloom.errors import UserError


def test_dataset_items_and_lazy_index(mini, tmp_path):
    ds = build_dataset(root=str(mini["fine"]), splits=["s"])
    item = ds[0]
    n = item["masks"].shape[0]
    assert item["image"].shape == (3, 48, 48) and item["masks"].dtype == torch.bool
    assert item["labels"].shape == item["isthing"].shape == item["iscrowd"].shape == (n,)
    assert item["boxes"].shape == (n, 4)
    assert int(item["masks"].sum()) + int((read_ids(ds.record(0)["png"]) == 0).sum()) == 48 * 48
    # the index is cached as memory-mapped arrays: the second open does not parse the JSON
    ix = ds.indexes[0]
    again = PanopticIndex(ix.json_path, ix.png_dir, ix.image_dirs)
    assert isinstance(again.seg_id, np.memmap) and again.record(3) == ix.record(3)


def test_transforms_keep_masks_and_boxes_in_sync(mini):
    from torchvision.transforms import v2

    ds = build_dataset(root=str(mini["fine"]), splits=["s"])
    ds.transforms = v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.Resize((96, 96))])
    item, plain = ds[1], build_dataset(root=str(mini["fine"]), splits=["s"])[1]
    assert item["masks"].shape[-2:] == (96, 96)
    assert torch.equal(item["masks"][:, ::2, ::2], plain["masks"].flip(-1))
    for m, b in zip(item["masks"], item["boxes"]):
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert b.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_merging_splits(mini):
    both = build_dataset(root=str(mini["fine"]), splits=["s", "relabeled-val"])
    assert len(both) == 22 and both.record(12)["image_id"] == 100000
    with pytest.raises(UserError, match="share image id"):
        open_splits(str(mini["fine"]), ["s", "s"])
    with pytest.raises(UserError, match="unknown split"):
        open_splits(str(mini["fine"]), ["xxl"])


def _copy(mini, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(mini["fine"], root, ignore=shutil.ignore_patterns(".paperloom-cache"))
    return root


def test_clear_errors_for_broken_data(mini, tmp_path):
    root = _copy(mini, tmp_path)
    js = root / "annotations" / "panoptic_train2017.json"
    data = json.loads(js.read_text())
    rec = data["annotations"][0]
    png = root / "panoptic_train2017" / rec["file_name"]
    ids = read_ids(png)
    write_ids(png, np.where(ids == rec["segments_info"][0]["id"], 777, ids))  # an id the JSON lacks
    with pytest.raises(UserError, match="777 is in the PNG but not in the JSON"):
        build_dataset(root=str(root), splits=["s"])[0]
    write_ids(png, ids)
    (root / "train2017" / data["images"][0]["file_name"]).unlink()
    with pytest.raises(UserError, match="is in none of"):
        build_dataset(root=str(root), splits=["s"])[0]
    from PIL import Image

    Image.new("RGB", (10, 10)).save(root / "train2017" / data["images"][0]["file_name"])
    with pytest.raises(UserError, match="same size"):
        build_dataset(root=str(root), splits=["s"])[0]
    data["annotations"][1]["segments_info"][0]["category_id"] = 4242
    js.write_text(json.dumps(data))
    with pytest.raises(UserError, match="category_id 4242"):
        build_dataset(root=str(root), splits=["s"])
    data["annotations"][1]["segments_info"][0]["category_id"] = 1
    data["annotations"][1]["segments_info"].append({"id": 99, "category_id": 1, "iscrowd": 0})
    js.write_text(json.dumps(data))
    with pytest.raises(UserError, match="99 is in the JSON segments_info but not in the PNG"):
        build_dataset(root=str(root), splits=["s"])[1]
    js.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        build_dataset(root=str(root), splits=["s"])
    with pytest.raises(UserError, match="none of"):
        open_splits(str(tmp_path / "nowhere"), ["val"])


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


def test_instances_json_equals_panoptic_source(mini, tmp_path):
    from pycocotools.coco import COCO

    ix = build_dataset(root=str(mini["fine"]), splits=["s"]).indexes[0]
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


def test_semantic_and_boxes(mini, tmp_path):
    ix = build_dataset(root=str(mini["fine"]), splits=["s"]).indexes[0]
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
