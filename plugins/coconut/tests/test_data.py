"""Dataset loading: items, the lazy index, merged splits, transforms, errors for broken data."""

import json
import shutil

import numpy as np
import pytest
import torch
from paperloom_coconut.components import build_panoptic
from paperloom_coconut.data import open_splits
from paperloom_coconut.panoptic import PanopticIndex, read_ids, write_ids

from paperloom import UserError


def test_dataset_items_and_lazy_index(mini, tmp_path, ctx):
    ds = build_panoptic(ctx, root=str(mini["fine"]), splits=["s"])
    item = ds[0]
    n = item["masks"].shape[0]
    assert item["image"].shape == (3, 48, 48) and item["masks"].dtype == torch.bool
    assert item["labels"].shape == item["isthing"].shape == item["iscrowd"].shape == (n,)
    assert item["boxes"].shape == (n, 4)
    assert int(item["masks"].sum()) + int((read_ids(ds.record(0)["png"]) == 0).sum()) == 48 * 48
    # the index is cached as memory-mapped arrays: the second open does not parse the JSON
    ix = ds.indexes[0]
    again = PanopticIndex(ix.json_path, ix.png_dir, ix.image_dirs)
    assert isinstance(again.seg_id.base, np.memmap) and again.record(3) == ix.record(3)


def test_transforms_keep_masks_and_boxes_in_sync(mini, ctx):
    from torchvision.transforms import v2

    ds = build_panoptic(ctx, root=str(mini["fine"]), splits=["s"])
    ds.transforms = v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.Resize((96, 96))])
    item, plain = ds[1], build_panoptic(ctx, root=str(mini["fine"]), splits=["s"])[1]
    assert item["masks"].shape[-2:] == (96, 96)
    assert torch.equal(item["masks"][:, ::2, ::2], plain["masks"].flip(-1))
    for m, b in zip(item["masks"], item["boxes"]):
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert b.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_merging_splits(mini, ctx):
    both = build_panoptic(ctx, root=str(mini["fine"]), splits=["s", "relabeled-val"])
    assert len(both) == 22 and both.record(12)["image_id"] == 100000
    with pytest.raises(UserError, match="share image id"):
        open_splits(str(mini["fine"]), ["s", "s"])
    with pytest.raises(UserError, match="unknown split"):
        open_splits(str(mini["fine"]), ["xxl"])


def _copy(mini, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(mini["fine"], root, ignore=shutil.ignore_patterns(".paperloom-cache"))
    return root


def test_clear_errors_for_broken_data(mini, tmp_path, ctx):
    root = _copy(mini, tmp_path)
    js = root / "annotations" / "panoptic_train2017.json"
    data = json.loads(js.read_text())
    rec = data["annotations"][0]
    png = root / "panoptic_train2017" / rec["file_name"]
    ids = read_ids(png)
    write_ids(png, np.where(ids == rec["segments_info"][0]["id"], 777, ids))  # an id the JSON lacks
    with pytest.raises(UserError, match="777 is in the PNG but not in the JSON"):
        build_panoptic(ctx, root=str(root), splits=["s"])[0]
    write_ids(png, ids)
    (root / "train2017" / data["images"][0]["file_name"]).unlink()
    with pytest.raises(UserError, match="is in none of"):
        build_panoptic(ctx, root=str(root), splits=["s"])[0]
    from PIL import Image

    Image.new("RGB", (10, 10)).save(root / "train2017" / data["images"][0]["file_name"])
    with pytest.raises(UserError, match="same size"):
        build_panoptic(ctx, root=str(root), splits=["s"])[0]
    data["annotations"][1]["segments_info"][0]["category_id"] = 4242
    js.write_text(json.dumps(data))
    with pytest.raises(UserError, match="category_id 4242"):  # a training item needs a known class
        build_panoptic(ctx, root=str(root), splits=["s"])[1]
    data["annotations"][1]["segments_info"][0]["category_id"] = 1
    data["annotations"][1]["segments_info"].append({"id": 99, "category_id": 1, "iscrowd": 0})
    js.write_text(json.dumps(data))
    with pytest.raises(UserError, match="99 is in the JSON segments_info but not in the PNG"):
        build_panoptic(ctx, root=str(root), splits=["s"])[1]
    js.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        build_panoptic(ctx, root=str(root), splits=["s"])
    with pytest.raises(UserError, match="none of"):
        open_splits(str(tmp_path / "nowhere"), ["val"])


@pytest.mark.parametrize("decoder", ["pyspng", "pil"])
def test_read_ids_decodes_rgb_and_rgba_pngs_to_ids(tmp_path, monkeypatch, decoder):
    """Both decoders give R + 256 G + 256^2 B for RGB and RGBA PNGs; wrong modes, sizes and broken files are
    one-line errors (checked from the header, before decoding)."""
    from paperloom_coconut import panoptic
    from PIL import Image

    if decoder == "pil":
        monkeypatch.setattr(panoptic, "_PYSPNG", None)
    else:
        pytest.importorskip("pyspng")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    want = rgb[..., 0].astype(np.uint32) + 256 * rgb[..., 1].astype(np.uint32) + 65536 * rgb[..., 2].astype(np.uint32)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.concatenate([rgb, np.full((7, 5, 1), 9, np.uint8)], -1), "RGBA").save(tmp_path / "rgba.png")
    for name in ("rgb.png", "rgba.png"):
        ids = read_ids(tmp_path / name, (7, 5))
        assert ids.dtype == np.uint32 and np.array_equal(ids, want)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    with pytest.raises(UserError, match="has mode L; expected 8-bit RGB ids"):
        read_ids(tmp_path / "gray.png")
    with pytest.raises(UserError, match="PNG is 5x7 but the JSON says 6x7"):
        read_ids(tmp_path / "rgb.png", (7, 6))
    (tmp_path / "cut.png").write_bytes((tmp_path / "rgb.png").read_bytes()[:60])
    with pytest.raises(UserError, match="cut.png cannot be decoded"):
        read_ids(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("not a png")
    with pytest.raises(UserError, match="is not a PNG file"):
        read_ids(tmp_path / "text.png")
