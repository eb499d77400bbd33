"""Torch datasets over COCONut splits: image, per-segment masks, categories, crowd flags, boxes.

`PanopticDataset` reads one image at a time from one or more lazily indexed splits (merged in
order); torchvision ``transforms.v2`` keep masks and boxes in sync with the image.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from paperloom import UserError

from .panoptic import PanopticIndex, check_present, label_map, read_ids, resolve_split


def open_splits(root: str = "", splits: list | tuple = ("val",), json: str = "", png_dir: str = "", image_dir: str = "",
                cache_dir: str = "") -> list[PanopticIndex]:
    """Indexes of the requested splits: named ones in a detectron2 root, or one explicit json/png_dir/image_dir."""
    out = []
    if json:
        if not png_dir:
            raise UserError("data.json is set but data.png_dir is empty; set the folder of panoptic PNGs")
        out.append(PanopticIndex(json, png_dir, [p for p in str(image_dir).split(",") if p], cache_dir or None))
    else:
        if not root:
            raise UserError("set data.root (a detectron2-style COCONut folder) or data.json + data.png_dir")
        for split in splits:
            js, png, imgs = resolve_split(root, split)
            out.append(PanopticIndex(js, png, [*imgs, *(Path(p) for p in str(image_dir).split(",") if p)],
                                     cache_dir or None, name=split))
    if not out:
        raise UserError("no split selected; set data.splits (e.g. [s, val]) or data.json")
    if len(out) > 1:
        seen = np.concatenate([np.asarray(ix.image_id).astype(str) for ix in out])
        uniq, counts = np.unique(seen, return_counts=True)
        if (counts > 1).any():
            raise UserError(f"merged splits {[ix.name for ix in out]} share image id {uniq[counts > 1][0]}; "
                            "merge disjoint splits (e.g. COCONut-B already contains S)")
        cats = [sorted(ix.categories) for ix in out]
        if any(c != cats[0] for c in cats):
            raise UserError(f"merged splits {[ix.name for ix in out]} have different category lists")
    return out


def make_transforms(train: bool, size: int = 0) -> v2.Compose | None:
    """Flip (train) and resize to size x size (0 = keep); masks use nearest neighbour, boxes follow."""
    ts = []
    if train:
        ts.append(v2.RandomHorizontalFlip())
    if size:
        ts.append(v2.Resize((size, size), antialias=True))
    return v2.Compose(ts) if ts else None


class PanopticDataset(torch.utils.data.Dataset):
    """Items: image (uint8 3xHxW), masks (N x H x W bool), labels (category ids), isthing, iscrowd,
    boxes (XYXY), segment_ids, image_id, file_name. Produces the ``coco-panoptic`` contract."""

    def __init__(self, indexes: list[PanopticIndex], transforms=None, limit: int = 0) -> None:
        self.indexes = indexes
        self.offsets = np.cumsum([0] + [len(ix) for ix in indexes]).tolist()
        self.transforms = transforms
        self.limit = limit
        first = indexes[0].categories
        self.categories = [first[k] for k in sorted(first)]

    def __len__(self) -> int:
        n = self.offsets[-1]
        return min(n, self.limit) if self.limit else n

    def locate(self, i: int) -> tuple[PanopticIndex, int]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self.offsets, i) - 1
        return self.indexes[k], i - self.offsets[k]

    def record(self, i: int) -> dict:
        ix, j = self.locate(i)
        return ix.record(j)

    def raw(self, i: int) -> tuple[np.ndarray | None, np.ndarray, dict]:
        """(image HxWx3 uint8, ids HxW uint32, record) with the size and id checks."""
        from PIL import Image

        ix, j = self.locate(i)
        rec = ix.record(j)
        ids = read_ids(rec["png"], (rec["height"], rec["width"]))
        path = ix.image_path(j)
        with Image.open(path) as im:
            img = np.array(im.convert("RGB"))
        if img.shape[:2] != ids.shape:
            raise UserError(f"{path} is {img.shape[1]}x{img.shape[0]} but its panoptic PNG {rec['png']} is "
                            f"{ids.shape[1]}x{ids.shape[0]}; image and label must have the same size")
        return img, ids, rec

    def __getitem__(self, i: int) -> dict:
        img, ids, rec = self.raw(i)
        segs = rec["segments_info"]
        ix, _ = self.locate(i)
        unknown = [s for s in segs if s["category_id"] not in ix.categories]
        if unknown:  # evaluation tolerates this as panopticapi does; a training target needs a known class
            raise UserError(f"{ix.json_path}: image {rec['image_id']} segment {unknown[0]['id']} has category_id "
                            f"{unknown[0]['category_id']}, which is not in 'categories'")
        seg_ids = np.asarray([s["id"] for s in segs], np.uint32)
        lab = label_map(ids, seg_ids, rec["png"])
        check_present(lab, seg_ids, rec["png"])
        masks = torch.from_numpy(lab[None] == np.arange(1, len(segs) + 1)[:, None, None])
        h, w = ids.shape
        item = {
            "image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()),
            "masks": tv_tensors.Mask(masks),
            "boxes": tv_tensors.BoundingBoxes(_boxes(masks), format="XYXY", canvas_size=(h, w)),
            "labels": torch.as_tensor([s["category_id"] for s in segs], dtype=torch.int64),
            "isthing": torch.as_tensor([s["isthing"] for s in segs], dtype=torch.bool),
            "iscrowd": torch.as_tensor([s["iscrowd"] for s in segs], dtype=torch.bool),
            "segment_ids": torch.as_tensor(seg_ids.astype(np.int64)),
        }
        if self.transforms is not None:
            item = self.transforms(item)
        item["image_id"], item["file_name"] = rec["image_id"], rec["file_name"]
        return item


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    if masks.shape[0] == 0:
        return torch.zeros(0, 4)
    from torchvision.ops import masks_to_boxes

    b = masks_to_boxes(masks)
    b[:, 2:] += 1  # pixel extents: x2 = last column + 1 (COCO w = x2 - x1, no +1)
    return b


def collate(batch: list[dict]) -> list[dict]:
    return batch
