"""The COCO panoptic format as COCONut ships it: id PNGs, a JSON of segments, a lazy index of a split.

A segment id is stored in the PNG as RGB with ``id = R + 256 * G + 256**2 * B``; 0 is VOID.
`PanopticIndex` turns a split's JSON into memory-mapped numpy arrays cached next to it (built
once), so a 358K-image split opens in well under a second afterwards and items are read on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from paperloom import UserError

VOID = 0
OFFSET = 256 * 256 * 256

# detectron2 layout (datasets/coco/...) per split: (json candidates, png-folder candidates, image folders)
SPLITS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "s": (("annotations/coconut_s.json", "annotations/panoptic_train2017.json"), ("coconut_s", "panoptic_train2017"),
          ("train2017",)),
    "b": (("annotations/coconut_b.json", "annotations/panoptic_train2017.json"), ("coconut_b", "panoptic_train2017"),
          ("train2017", "unlabeled2017")),
    "l": (("annotations/coconut_l.json", "annotations/panoptic_train2017.json"), ("coconut_l", "panoptic_train2017"),
          ("train2017", "unlabeled2017", "objects365")),
    "xl": (("annotations/coconut_xl.json", "annotations/panoptic_train2017.json"), ("coconut_xl", "panoptic_train2017"),
           ("train2017", "unlabeled2017", "objects365")),
    "val": (("annotations/coconut_val.json", "annotations/panoptic_val2017.json"), ("coconut_val", "panoptic_val2017"),
            ("val2017", "objects365_val", "objects365")),
    "relabeled-val": (("annotations/relabeled_coco_val.json", "annotations/panoptic_val2017.json"),
                      ("relabeled_coco_val", "panoptic_val2017"), ("val2017",)),
}


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint32 segment ids (R + 256 G + 256^2 B, read as little-endian RGB0 words)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"rgb2id expects an (H, W, 3) array, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        rgb = rgb[..., :3].astype(np.uint32)
        return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)
    words = np.zeros((*rgb.shape[:2], 4), np.uint8)
    words[..., :3] = rgb[..., :3]
    return words.view("<u4")[..., 0]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) integer ids (< 2**24) -> (H, W, 3) uint8."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= OFFSET):
        raise ValueError("segment ids must lie in [0, 256**3)")
    ids = ids.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


PNG_COLOR_TYPES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}


def read_ids(path: str | Path, expect_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Read a panoptic PNG as (H, W) uint32 ids, with one-line errors for missing or non-RGB files and, when the
    annotation JSON gives the image's size (`expect_hw`, -1 = unknown), for a PNG of another size.

    Decoder: libspng (pyspng) when installed, the fastest measured here (README), PIL otherwise; straight to
    RGBA words, whose alpha byte is masked in place (R + 256 G + 256^2 B): no other copy."""
    words = read_pixels(path, expect_hw, rgba=True).view("<u4")[..., 0]  # little-endian: R + 256 G + 256^2 B + 256^3 A
    np.bitwise_and(words, np.uint32(0xFFFFFF), out=words)  # drop alpha in place: the same as rgb2id
    return words


def read_pixels(path: str | Path, expect_hw: tuple[int, int] | None = None, rgba: bool = False) -> np.ndarray:
    """A panoptic PNG's pixels as decoded, (H, W, 3) uint8 for RGB files and (H, W, 4) for RGBA ones (or always
    4 with `rgba`), after `read_ids`'s checks. The PQ evaluator reads these: decoding to the file's own format
    is the fastest a decoder goes (the benchmark's decode floor), and its kernel takes 3 or 4 bytes a pixel."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"panoptic PNG {path} does not exist; check png_dir and the annotation's file_name")
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 33:
        raise UserError(f"panoptic PNG {path} is not a PNG file; write ids as an RGB PNG (R + 256*G + 256^2*B)")
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, color = data[24], data[25]
    if depth != 8 or color not in (2, 6):
        mode = PNG_COLOR_TYPES.get(color, f"color type {color}") + ("" if depth == 8 else f" {depth}-bit")
        raise UserError(f"panoptic PNG {path} has mode {mode}; expected 8-bit RGB ids (R + 256*G + 256^2*B)")
    if expect_hw is not None and expect_hw[0] > 0 and (h, w) != tuple(expect_hw):
        raise UserError(f"{path}: PNG is {w}x{h} but the JSON says {expect_hw[1]}x{expect_hw[0]}; fix the "
                        "annotation's height/width or the PNG")
    try:
        return _decode(data, "RGBA" if rgba else None)
    except Exception as exc:  # a truncated or corrupt file
        raise UserError(f"panoptic PNG {path} cannot be decoded ({str(exc)[:80]}); re-write the file") from None


def _decode(data: bytes, mode: str | None) -> np.ndarray:
    """(H, W, C) uint8 of an 8-bit RGB(A) PNG file's bytes: C = 4 for mode "RGBA", the file's own otherwise."""
    if _PYSPNG is not None:
        return _PYSPNG.load(data, mode)
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert(mode) if mode else im)


try:
    import pyspng as _PYSPNG
except ImportError:  # pragma: no cover - the declared dependency; PIL is the fallback
    _PYSPNG = None


def save_png(image, path: str | Path) -> Path:
    """Save a PIL image (or an HxW / HxWx3 uint8 array) as PNG via a temp file + rename: never half a file."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(tmp)
    os.replace(tmp, path)
    return path


def write_ids(path: str | Path, ids: np.ndarray) -> None:
    """Write ids as an RGB PNG atomically."""
    save_png(id2rgb(ids), path)


def resolve_split(root: str | Path, split: str) -> tuple[Path, Path, list[Path]]:
    """(json, png folder, image folders) of a named split in a detectron2-style root."""
    root = Path(root).expanduser()
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)} (or set data.json/png_dir)")
    jsons, pngs, images = SPLITS[split]
    js = next((root / j for j in jsons if (root / j).is_file()), None)
    if js is None:
        raise UserError(f"split {split!r}: none of {', '.join(str(root / j) for j in jsons)} exists; "
                        "download the COCONut annotations there (detectron2 layout) or set data.json")
    png = next((root / p for p in pngs if (root / p).is_dir()), None)
    if png is None:
        raise UserError(f"split {split!r}: no PNG folder among {', '.join(str(root / p) for p in pngs)}")
    return js, png, [root / i for i in images if (root / i).is_dir()]


class PanopticIndex:
    """A split's annotations as flat (memory-mapped) arrays: image rows and their segment rows.

    ``categories`` maps id -> {name, isthing, ...}. ``record(i)`` gives image i's dict as the JSON has it.
    """

    FIELDS = ("image_id", "height", "width", "file_name", "png_name", "seg_start",
              "seg_id", "seg_cat", "seg_crowd", "seg_area", "seg_bbox")

    def __init__(self, json_path: str | Path, png_dir: str | Path, image_dirs: list | tuple = (),
                 cache_dir: str | Path | None = None, name: str = "") -> None:
        self.json_path = Path(json_path).expanduser()
        self.png_dir = Path(png_dir).expanduser()
        self.image_dirs = [Path(d).expanduser() for d in image_dirs]
        self.name = name or self.json_path.stem
        if not self.json_path.is_file():
            raise UserError(f"annotation JSON {self.json_path} does not exist")
        if not self.png_dir.is_dir():
            raise UserError(f"panoptic PNG folder {self.png_dir} does not exist")
        arrays, cats, self.oddities = self._load(cache_dir)
        self.categories = {int(c["id"]): c for c in cats}
        for k in self.FIELDS:
            setattr(self, k, arrays[k])

    # -- building and caching
    def _cache_folder(self, cache_dir: str | Path | None) -> Path:
        st = self.json_path.stat()
        key = hashlib.sha1(f"{self.json_path.resolve()}|{st.st_size}|{st.st_mtime_ns}|v2".encode()).hexdigest()[:16]
        base = Path(cache_dir).expanduser() if cache_dir else self.json_path.parent / ".paperloom-cache"
        return base / f"{self.json_path.stem}-{key}"

    def _load(self, cache_dir: str | Path | None) -> tuple[dict, list, dict]:
        folder = self._cache_folder(cache_dir)
        if (folder / "done").is_file():
            # plain ndarray views of the maps: slicing a np.memmap costs ~4 us in __array_finalize__ alone
            arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r").view(np.ndarray) for k in self.FIELDS}
            return (arrays, json.loads((folder / "categories.json").read_text()),
                    json.loads((folder / "oddities.json").read_text()))
        arrays, cats, odd = build_arrays(self.json_path)
        try:
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            for k, v in arrays.items():
                np.save(tmp / f"{k}.npy", v)
            (tmp / "categories.json").write_text(json.dumps(cats))
            (tmp / "oddities.json").write_text(json.dumps(odd))
            (tmp / "done").write_text("ok\n")
            if folder.exists():  # another process built it first
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.replace(tmp, folder)
        except OSError:
            pass  # read-only location: keep the in-memory arrays
        return arrays, cats, odd

    # -- access
    def __len__(self) -> int:
        return len(self.image_id)

    def segments(self, i: int) -> list[dict]:
        a, b = int(self.seg_start[i]), int(self.seg_start[i + 1])
        ids, cats = self.seg_id[a:b].tolist(), self.seg_cat[a:b].tolist()
        crowd, area, bbox = self.seg_crowd[a:b].tolist(), self.seg_area[a:b].tolist(), self.seg_bbox[a:b].tolist()
        return [{"id": ids[j], "category_id": cats[j], "iscrowd": crowd[j],
                 "isthing": int(self.categories.get(cats[j], {}).get("isthing", 0)), "area": area[j], "bbox": bbox[j]}
                for j in range(b - a)]

    def record(self, i: int) -> dict:
        return {"image_id": _py(self.image_id[i]), "height": int(self.height[i]), "width": int(self.width[i]),
                "file_name": self.file_name[i].decode(), "png": str(self.png_dir / self.png_name[i].decode()),
                "segments_info": self.segments(i)}

    def image_path(self, i: int) -> Path:
        name = self.file_name[i].decode()
        for d in self.image_dirs:
            if (d / name).is_file():
                return d / name
        where = ", ".join(str(d) for d in self.image_dirs) or "(no image folder configured)"
        raise UserError(f"image {name} (image_id {_py(self.image_id[i])}) is in none of: {where}")


def _py(v):
    return v.item() if hasattr(v, "item") else v


def build_arrays(json_path: Path) -> tuple[dict, list, dict]:
    """Parse a COCO panoptic JSON into flat arrays, checking ids, categories and references; also the split's
    oddities that panopticapi evaluates anyway (unknown GT categories, annotations without an image entry),
    as {name: [count, first example]} (see `pq.ODDITIES`)."""
    from paperloom.io import read_json

    from .pq import require_isthing

    data = read_json(json_path)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise UserError(f"{json_path}: missing top-level key {key!r}; expected a COCO panoptic JSON")
    require_isthing(data["categories"], str(json_path))
    cats = [{"id": int(c["id"]), "name": c.get("name", str(c["id"])), "isthing": int(c["isthing"]),
             **({"color": c["color"]} if "color" in c else {})} for c in data["categories"]]
    known = {c["id"] for c in cats}
    odd: dict = {}

    def note(name: str, example: str) -> None:
        odd.setdefault(name, [0, example])[0] += 1

    anns = {}
    for a in data["annotations"]:
        anns[a["image_id"]] = a
    by_id = {im["id"]: im for im in data["images"]}
    # panopticapi's pq_compute never reads 'images': an annotation without an image entry is evaluated too
    imgs = list(data["images"])
    for image_id in anns:
        if image_id not in by_id:
            note("annotation_without_image", f"{json_path}: annotation for image_id {image_id}")
            imgs.append({"id": image_id, "file_name": ""})  # no image file known: evaluation needs none
    n = len(imgs)
    seg_start = np.zeros(n + 1, np.int64)
    ids, catv, crowd, area, bbox = [], [], [], [], []
    for i, im in enumerate(imgs):
        a = anns.get(im["id"])
        if a is None:
            raise UserError(f"{json_path}: image {im['id']} ({im.get('file_name')}) has no entry in 'annotations'")
        for s in a["segments_info"]:
            if s["category_id"] not in known:
                note("gt_unknown_category", f"{json_path}: image {im['id']} segment {s['id']} category_id "
                     f"{s['category_id']}")
            if not 0 < int(s["id"]) < OFFSET:
                raise UserError(f"{json_path}: image {im['id']} has segment id {s['id']}; ids must be in 1..256^3-1")
            ids.append(int(s["id"]))
            catv.append(int(s["category_id"]))
            crowd.append(int(s.get("iscrowd", 0)))
            area.append(int(s.get("area", -1)))
            bbox.append(s.get("bbox", [0, 0, 0, 0]))
        seg_start[i + 1] = len(ids)
    image_ids = [im["id"] for im in imgs]
    arrays = {
        "image_id": np.asarray(image_ids, dtype=np.int64 if all(isinstance(x, int) for x in image_ids) else "S"),
        "height": np.asarray([im.get("height", -1) for im in imgs], np.int32),
        "width": np.asarray([im.get("width", -1) for im in imgs], np.int32),
        "file_name": np.asarray([im["file_name"].encode() for im in imgs], dtype="S"),
        "png_name": np.asarray([anns[im["id"]]["file_name"].encode() for im in imgs], dtype="S"),
        "seg_start": seg_start,
        "seg_id": np.asarray(ids, np.uint32), "seg_cat": np.asarray(catv, np.int32),
        "seg_crowd": np.asarray(crowd, np.uint8), "seg_area": np.asarray(area, np.int64),
        "seg_bbox": np.asarray(bbox, np.float32).reshape(-1, 4),
    }
    return arrays, cats, odd


def check_segment_ids(seg_ids, where: str = "") -> np.ndarray:
    """An image's segment ids as int64, each in 1..256^3-1, no repeats, at most 32766 (labels are int16)."""
    seg_ids = np.ascontiguousarray(seg_ids, np.int64)  # contiguous: the kernel reads it as a buffer
    ids = seg_ids.tolist()  # an image's few dozen ids: Python's min, max and set beat numpy's per-call costs
    if ids and (min(ids) <= 0 or max(ids) >= OFFSET):
        raise UserError(f"{where}: segment ids must lie in 1..256^3-1")
    if len(set(ids)) != len(ids):
        raise UserError(f"{where}: duplicate segment ids in segments_info")
    if len(seg_ids) >= 2**15 - 1:
        raise UserError(f"{where}: {len(seg_ids)} segments in one image; at most 32766 are supported")
    return seg_ids


_LUT: np.ndarray | None = None  # one 2^24 table per process: id -> segment index + 1, reset after each use


def label_map(ids: np.ndarray, seg_ids: np.ndarray, where: str = "", orphan: int | None = None) -> np.ndarray:
    """Segment index + 1 per pixel (0 = VOID): one gather through a reusable id table, O(pixels).

    A nonzero id the JSON lacks is a one-line error, or gets the label `orphan` when one is given.
    """
    global _LUT
    seg_ids = check_segment_ids(seg_ids, where)
    if _LUT is None:
        _LUT = np.zeros(OFFSET, np.int16)  # 32 MB; int16 labels halve the memory traffic of every later pass
    try:
        _LUT[seg_ids] = np.arange(1, len(seg_ids) + 1, dtype=np.int16)
        lab = np.take(_LUT, ids)  # np.take: about twice as fast as fancy indexing here
    finally:
        _LUT[seg_ids] = 0
    if np.count_nonzero(lab) != np.count_nonzero(ids):  # a nonzero id mapped to 0: not in the JSON
        unknown = (lab == 0) & (ids != VOID)
        if orphan is not None:
            lab[unknown] = orphan
            return lab
        raise UserError(f"{where}: segment id {int(ids[unknown][0])} is in the PNG but not in the JSON segments_info")
    return lab


def check_present(lab: np.ndarray, seg_ids, where: str = "") -> np.ndarray:
    """Pixel count per segment (from a label map); error when a JSON segment has no pixel in the PNG."""
    counts = np.bincount(lab.ravel(), minlength=len(seg_ids) + 1)[1:]
    if (counts == 0).any():
        missing = int(np.asarray(seg_ids)[np.flatnonzero(counts == 0)[0]])
        raise UserError(f"{where}: segment id {missing} is in the JSON segments_info but not in the PNG")
    return counts
