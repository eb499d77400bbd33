"""Image-text pairs in the formats real users have, as `image-text-pairs` datasets (items {"image": float (3, H, W)
in [0, 1], "text": str, "key": str}):

- a captions file (CSV or TSV, open_clip's `--csv-img-key filepath --csv-caption-key title` columns) beside an
  image folder, or a JSONL file of {"filepath": ..., "title": ...} records (keys configurable): `FilePairs`;
- webdataset tar shards (<key>.jpg|png|webp + <key>.txt), streamed with DataLoader workers: `wds_pairs`;
- an ImageFolder layout (one subfolder per class) for zero-shot and linear-probe evaluation: `image_folder`.
Images are resized (shorter side) and center-cropped to the model's size.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2
from torchvision.transforms.functional import pil_to_tensor

from paperloom import UserError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp")


def to_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """PIL image -> (3, size, size) float in [0, 1]: RGB, shorter side resized to size, center crop."""
    x = pil_to_tensor(img.convert("RGB"))
    if x.shape[1:] != (size, size):
        x = v2.functional.center_crop(v2.functional.resize(x, size, antialias=True), [size, size])
    return x.float().div(255)


def load_image(path: str | Path, size: int) -> torch.Tensor:
    try:
        with Image.open(path) as img:
            return to_tensor(img, size)
    except FileNotFoundError:
        raise UserError(f"image {path} does not exist; check data.image_root and the captions file's paths") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"image {path} cannot be read ({e}); remove the pair or replace the file") from None


def length(ds: Any) -> int | None:
    """len(ds), or None for a stream (webdataset pipelines define __len__ but may not know it)."""
    try:
        return len(ds)
    except TypeError:
        return None


def detect_format(path: str, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    first = path.split(",")[0].lower()
    for ext, name in ((".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"), (".tar", "wds")):
        if first.endswith(ext):
            return name
    raise UserError(f"data.path {path!r}: cannot tell the format from the extension; set data.format to one of "
                    "csv, tsv, jsonl, wds")


def read_index(path: str, fmt: str, image_root: str = "", img_key: str = "filepath", caption_key: str = "title",
               ) -> list[tuple[str, str]]:
    """(image path, caption) pairs of a CSV / TSV / JSONL captions file; paths relative to image_root (default:
    the file's folder)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"data.path {path} does not exist; give a captions .csv/.tsv/.jsonl file or .tar shards")
    root = Path(image_root) if image_root else file.parent
    rows: list[dict] = []
    if fmt == "jsonl":
        for n, line in enumerate(file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: line {n} is not valid JSON ({e.msg}); fix or remove that line") from None
    else:
        with open(file, newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ",")
            rows = list(reader)
            columns = reader.fieldnames or []
        for key, what in ((img_key, "img_key"), (caption_key, "caption_key")):
            if key not in columns:
                raise UserError(f"{path}: no column {key!r} (data.{what}); its columns are {columns}")
    out = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or img_key not in row or caption_key not in row:
            raise UserError(f"{path}: record {n} lacks {img_key!r} or {caption_key!r} (data.img_key / "
                            "data.caption_key)")
        out.append((str(root / row[img_key]), str(row[caption_key])))
    if not out:
        raise UserError(f"{path} holds no pairs; give a file with at least one image-caption record")
    return out


class FilePairs(torch.utils.data.Dataset):
    """Map-style pairs from a captions file; images read on access."""

    def __init__(self, index: list[tuple[str, str]], size: int) -> None:
        self.index, self.size = index, size
        self.texts = [t for _, t in index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        path, text = self.index[i]
        return {"image": load_image(path, self.size), "text": text, "key": str(i), "path": path}


class TensorPairs(torch.utils.data.Dataset):
    """Pairs held in memory (generated data): uint8 (N, H, W, 3) images and their captions."""

    def __init__(self, images: np.ndarray, texts: list[str]) -> None:
        self.images, self.texts = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), list(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i].float().div(255), "text": self.texts[i], "key": str(i)}


def shard_urls(path: str) -> list[str]:
    """Comma-separated shard paths, each with optional {000..009} brace ranges; every file must exist."""
    from braceexpand import braceexpand

    urls = [u for part in path.split(",") if part.strip() for u in braceexpand(part.strip())]
    missing = [u for u in urls if not Path(u).is_file()]
    if not urls or missing:
        raise UserError(f"data.path: shard {missing[0] if missing else path!r} does not exist; give existing .tar "
                        "shards (comma separated or shard-{000000..000009}.tar)")
    return urls


def shard_texts(urls: list[str]) -> list[str]:
    """Every caption of the shards (only the .txt members are read): for training a tokenizer."""
    texts = []
    for url in urls:
        with tarfile.open(url) as tar:
            texts += [tar.extractfile(m).read().decode() for m in tar if m.name.endswith(".txt")]
    return texts


class _Decode:
    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, sample: dict) -> dict:
        ext = next((e for e in IMAGE_EXTS if e in sample), None)
        if ext is None or "txt" not in sample:
            raise UserError(f"{sample.get('__url__')}: sample {sample.get('__key__')} lacks an image "
                            f"({'/'.join(IMAGE_EXTS)}) or a .txt caption")
        try:
            image = to_tensor(Image.open(io.BytesIO(sample[ext])), self.size)
        except (UnidentifiedImageError, OSError) as e:
            raise UserError(f"{sample['__url__']}: sample {sample['__key__']}.{ext} cannot be decoded ({e})") from None
        return {"image": image, "text": sample["txt"].decode(), "key": sample["__key__"], "url": sample["__url__"]}


def wds_pairs(urls: list[str], size: int, shuffle: int = 0, repeat: bool = False) -> Any:
    """A webdataset pipeline over the shards: split by DDP rank and DataLoader worker, decoded to pairs;
    `shuffle` > 0 adds a sample buffer of that size, `repeat` cycles for step-budgeted training."""
    import webdataset as wds

    ds = wds.WebDataset(urls, shardshuffle=len(urls) if shuffle else False, nodesplitter=wds.split_by_node,
                        workersplitter=wds.split_by_worker, empty_check=False)
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(shuffle)
    return ds.map(_Decode(size))


def open_pairs(path: str, format: str = "auto", image_root: str = "", img_key: str = "filepath",
               caption_key: str = "title", image_size: int = 32, limit: int = 0, train: bool = False) -> Any:
    """The dataset of any supported format; map-style (with `.texts`) for files, iterable for shards (with
    `.urls`)."""
    if not path:
        raise UserError("data.path is empty; give a captions .csv/.tsv/.jsonl file or webdataset .tar shards")
    fmt = detect_format(path, format)
    if fmt == "wds":
        urls = shard_urls(path)
        ds = wds_pairs(urls, image_size, shuffle=1000 if train else 0, repeat=train)
        if limit:
            ds = ds.slice(limit)
        ds.urls = urls
        return ds
    index = read_index(path, fmt, image_root, img_key, caption_key)
    return FilePairs(index[:limit] if limit else index, image_size)


def image_folder(root: str, size: int) -> tuple[Any, list[str]]:
    """(torchvision ImageFolder with items (image (3, size, size), label), class names with '_' -> ' ')."""
    from torchvision.datasets import ImageFolder

    if not Path(root).is_dir():
        raise UserError(f"{root} is not a folder; give an ImageFolder layout (one subfolder of images per class)")
    try:
        ds = ImageFolder(root, transform=lambda img: to_tensor(img, size))
    except (FileNotFoundError, RuntimeError) as e:
        raise UserError(f"{root}: not an ImageFolder layout ({e}); put each class's images in its own subfolder"
                        ) from None
    return ds, [c.replace("_", " ") for c in ds.classes]
