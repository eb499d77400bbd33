"""Generated image-caption pairs for the demo and tests: one coloured shape per image at one of four positions,
templated captions, and a controlled fraction of wrong captions (the "low-quality" web pairs of paper Sec. 4.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
TEMPLATES = ("a {color} {shape} in the {pos}", "a photo of a {color} {shape} at the {pos}.",
             "{pos}: one {color} {shape}", "there is a {color} {shape} in the {pos} corner")


def class_names() -> list[str]:
    """Zero-shot classes: colour x shape ("red circle", ...), 12 in all."""
    return [f"{c} {s}" for c in COLORS for s in SHAPES]


def draw(cls: int, pos: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image: grey noise background, the class's shape in the position's quadrant."""
    color = np.array(list(COLORS.values())[cls // len(SHAPES)], dtype=np.float32)
    shape = SHAPES[cls % len(SHAPES)]
    img = rng.normal(128, 20, (size, size, 3)).clip(0, 255).astype(np.float32)
    r = size * rng.uniform(0.14, 0.2)
    cy = size * (0.27 if pos < 2 else 0.73) + rng.uniform(-1.5, 1.5)
    cx = size * (0.27 if pos % 2 == 0 else 0.73) + rng.uniform(-1.5, 1.5)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) + 0.5
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        mask = dy**2 + dx**2 <= r**2
    elif shape == "square":
        mask = (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    else:  # upward triangle
        mask = (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    img[mask] = color * rng.uniform(0.85, 1.1)
    return img.clip(0, 255).astype(np.uint8)


def caption(cls: int, pos: int, rng: np.random.Generator) -> str:
    color, shape = list(COLORS)[cls // len(SHAPES)], SHAPES[cls % len(SHAPES)]
    return TEMPLATES[rng.integers(len(TEMPLATES))].format(color=color, shape=shape, pos=POSITIONS[pos])


def make_pairs(n: int, size: int = 32, noise: float = 0.0, seed: int = 0) -> dict:
    """{"images": uint8 (n, size, size, 3), "texts": [str], "labels": int (n,), "correct": bool (n,)}. A
    round(noise * n) random subset gets the caption of a different class (and random position)."""
    rng = np.random.default_rng(seed)
    n_cls = len(class_names())
    labels, positions = rng.integers(n_cls, size=n), rng.integers(len(POSITIONS), size=n)
    images = np.stack([draw(c, p, size, rng) for c, p in zip(labels, positions)]) if n else np.zeros((0, size, size, 3))
    correct = np.ones(n, dtype=bool)
    correct[rng.permutation(n)[: int(round(noise * n))]] = False
    texts = []
    for c, p, ok in zip(labels, positions, correct):
        if not ok:
            c, p = (c + rng.integers(1, n_cls)) % n_cls, rng.integers(len(POSITIONS))
        texts.append(caption(int(c), int(p), rng))
    return {"images": images.astype(np.uint8), "texts": texts, "labels": labels, "correct": correct}


def write_image_folder(root: str | Path, per_class: int, size: int = 32, seed: int = 0) -> Path:
    """An ImageFolder layout (root/<class_name>/<i>.png) of held-out images, per_class of each class."""
    from PIL import Image

    root, rng = Path(root), np.random.default_rng(seed)
    for cls, name in enumerate(class_names()):
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw(cls, int(rng.integers(len(POSITIONS))), size, rng)).save(folder / f"{i:04d}.png")
    return root


def write_pairs(folder: str | Path, pairs: dict, fmt: str = "csv", per_shard: int = 100) -> Path:
    """Write pairs in a real on-disk format: images/ + captions.csv|.tsv (filepath, title), pairs.jsonl, or
    webdataset shards (shard-000000.tar with <key>.png + <key>.txt). Returns the captions file / first shard."""
    import csv
    import io
    import json
    import tarfile

    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "wds":
        for start in range(0, len(pairs["texts"]), per_shard):
            with tarfile.open(folder / f"shard-{start // per_shard:06d}.tar", "w") as tar:
                for i in range(start, min(start + per_shard, len(pairs["texts"]))):
                    buf = io.BytesIO()
                    Image.fromarray(pairs["images"][i]).save(buf, format="PNG")
                    for ext, data in (("png", buf.getvalue()), ("txt", pairs["texts"][i].encode())):
                        info = tarfile.TarInfo(f"{i:08d}.{ext}")
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
        return folder / "shard-000000.tar"
    (folder / "images").mkdir(exist_ok=True)
    rows = []
    for i, (img, text) in enumerate(zip(pairs["images"], pairs["texts"])):
        Image.fromarray(img).save(folder / "images" / f"{i:06d}.png")
        rows.append({"filepath": f"images/{i:06d}.png", "title": text})
    if fmt == "jsonl":
        path = folder / "pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path
    path = folder / ("captions.tsv" if fmt == "tsv" else "captions.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["filepath", "title"], delimiter="\t" if fmt == "tsv" else ",")
        w.writeheader()
        w.writerows(rows)
    return path
