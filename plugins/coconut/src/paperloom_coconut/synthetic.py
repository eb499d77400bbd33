"""A generated COCONut-format mini dataset and a "coarse" copy of its labels (the demo's data).

Fine labels are exact masks of drawn shapes: things (person triangles, car boxes, ball discs,
donut rings with real holes, occluding each other so parts split), stuff (sky, grass, a road
band), crowd clusters and thin VOID borders. The coarse copy imitates old COCO labels: polygons
simplified from the mask outline (holes filled), road merged into grass, a straight horizon,
and half of the small objects missed (labelled as the stuff under them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skimage.draw import disk, polygon
from skimage.measure import approximate_polygon, find_contours

from paperloom.io import atomic_write_text

from .categories import by_name
from .panoptic import save_png, write_ids

CATS = by_name("person", "car", "sports ball", "donut", "road", "sky-other-merged", "grass-merged")
PERSON, CAR, BALL, DONUT, ROAD, SKY, GRASS = (c["id"] for c in CATS)
COLORS = {PERSON: (225, 60, 205), CAR: (50, 70, 190), BALL: (235, 220, 40), DONUT: (175, 95, 30),
          ROAD: (105, 105, 110), SKY: (130, 180, 235), GRASS: (70, 150, 60)}


def _shape(rng: np.random.Generator, cat: int, h: int, w: int, size: float) -> np.ndarray:
    m = np.zeros((h, w), bool)
    cy, cx = rng.uniform(4, h - 4), rng.uniform(4, w - 4)
    if cat == PERSON:
        rr, cc = polygon([cy - size, cy + size, cy + size], [cx, cx - 0.6 * size, cx + 0.6 * size], (h, w))
    elif cat == CAR:
        rr, cc = polygon([cy - 0.5 * size, cy - 0.5 * size, cy + 0.5 * size, cy + 0.5 * size],
                         [cx - size, cx + size, cx + size, cx - size], (h, w))
    else:
        rr, cc = disk((cy, cx), size * (0.7 if cat == BALL else 1.0), shape=(h, w))
    m[rr, cc] = True
    if cat == DONUT:
        rr, cc = disk((cy, cx), size * 0.45, shape=(h, w))
        m[rr, cc] = False
    return m


def _stuff_layout(rng, h: int, w: int, coarse: bool) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    base, amp, phase = rng.uniform(0.3, 0.5) * h, rng.uniform(1, 4), rng.uniform(0, 6.3)
    horizon = base if coarse else base + amp * np.sin(xx / 6.0 + phase)
    out = np.where(yy < horizon, SKY, GRASS)
    if rng.random() < 0.7:
        a, b = rng.uniform(-0.4, 0.4), rng.uniform(0.65, 0.85) * h
        band = (yy > a * (xx - w / 2) + b - 5) & (yy < a * (xx - w / 2) + b + 5) & (yy >= horizon)
        out[band] = GRASS if coarse else ROAD
    return out


def _coarse_polygon(mask: np.ndarray, rng) -> np.ndarray:
    out = np.zeros_like(mask)
    for c in find_contours(np.pad(mask, 1).astype(float), 0.5):
        p = approximate_polygon(c - 1, tolerance=1.6)
        if len(p) >= 3:
            jitter = rng.normal(0, 0.7, p.shape)
            rr, cc = polygon(p[:, 0] + jitter[:, 0], p[:, 1] + jitter[:, 1], mask.shape)
            out[rr, cc] = True
    return out


def render(rng: np.random.Generator, h: int = 64, w: int = 64) -> tuple[np.ndarray, tuple, tuple]:
    """One image with its fine and coarse panoptic labels: (image, (ids, segs), (ids, segs))."""
    seed = int(rng.integers(1 << 31))
    fine_stuff = _stuff_layout(np.random.default_rng(seed), h, w, coarse=False)
    coarse_stuff = _stuff_layout(np.random.default_rng(seed), h, w, coarse=True)
    objects = []  # (category, visible mask later, full mask, crowd)
    for _ in range(int(rng.integers(2, 6))):
        cat = int(rng.choice([PERSON, CAR, BALL, DONUT]))
        objects.append([cat, _shape(rng, cat, h, w, rng.uniform(3.5, 10) * h / 64), False])
    if rng.random() < 0.35:  # a crowd: a cluster of small persons labelled as one crowd segment
        cy, cx = rng.uniform(10, h - 10), rng.uniform(10, w - 10)
        m = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(5, 9))):
            y, x = cy + rng.normal(0, 4), cx + rng.normal(0, 4)
            rr, cc = polygon([y - 3, y + 3, y + 3], [x, x - 2, x + 2], (h, w))
            m[rr, cc] = True
        objects.insert(0, [PERSON, m, True])
    # image: stuff texture, then shapes in order (later ones occlude earlier ones)
    img = np.zeros((h, w, 3), np.float32)
    for cat in (SKY, GRASS, ROAD):
        img[fine_stuff == cat] = COLORS[cat]
    img += rng.normal(0, 12, (h, w, 1)) * (fine_stuff == GRASS)[..., None]
    owner = np.full((h, w), -1)
    for k, (cat, m, _) in enumerate(objects):
        tint = np.asarray(COLORS[cat], np.float32) + rng.normal(0, 18, 3)
        img[m] = tint
        owner[m] = k
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    fine = _labels(rng, fine_stuff, objects, owner, coarse=False)
    coarse = _labels(rng, coarse_stuff, objects, owner, coarse=True)
    return img, fine, coarse


def _labels(rng, stuff: np.ndarray, objects: list, owner: np.ndarray, coarse: bool) -> tuple[np.ndarray, list[dict]]:
    h, w = stuff.shape
    ids = np.zeros((h, w), np.uint32)
    segs: list[dict] = []
    used = set()

    def new_id() -> int:
        while True:
            sid = int(rng.integers(1, 1 << 24))
            if sid not in used:
                used.add(sid)
                return sid

    cat_map = stuff.copy()
    inst = np.full((h, w), -1)
    for k, (cat, _, crowd) in enumerate(objects):
        vis = owner == k
        if not vis.any():
            continue
        if coarse and not crowd:
            if vis.sum() < 60 and rng.random() < 0.5:
                continue  # missed small object: stays the stuff under it
            vis = _coarse_polygon(vis, rng)
        cat_map[vis] = cat
        inst[vis] = k
    for cat in (SKY, GRASS, ROAD):
        m = (cat_map == cat) & (inst < 0)
        if m.any():
            sid = new_id()
            ids[m] = sid
            segs.append({"id": sid, "category_id": cat, "iscrowd": 0, "isthing": 0})
    for k, (cat, _, crowd) in enumerate(objects):
        m = inst == k
        if m.any():
            sid = new_id()
            ids[m] = sid
            segs.append({"id": sid, "category_id": cat, "iscrowd": int(crowd), "isthing": 1})
    if not coarse:  # thin VOID borders around some objects, as annotators leave them
        for k in range(len(objects)):
            m = inst == k
            if m.any() and rng.random() < 0.3:
                ring = np.zeros_like(m)
                ring[1:] |= m[:-1]
                ring[:-1] |= m[1:]
                ring[:, 1:] |= m[:, :-1]
                ring[:, :-1] |= m[:, 1:]
                ring &= (inst < 0)
                ids[ring] = 0
    counts = {}
    u, c = np.unique(ids, return_counts=True)
    counts = dict(zip(u.tolist(), c.tolist()))
    segs = [s for s in segs if counts.get(s["id"], 0) > 0]
    for s in segs:
        m = ids == s["id"]
        ys, xs = np.nonzero(m)
        s["area"] = int(counts[s["id"]])
        s["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return ids, segs


def write_split(root: Path, split: str, items: list[tuple[int, np.ndarray | None, np.ndarray, list[dict]]]) -> None:
    """Write images (when given), PNGs and the JSON in the detectron2 layout under root."""
    images, anns = [], []
    for image_id, img, ids, segs in items:
        name = f"{image_id:012d}"
        if img is not None:
            save_png(img, root / f"{split}2017" / f"{name}.png")
        write_ids(root / f"panoptic_{split}2017" / f"{name}.png", ids)
        images.append({"id": image_id, "file_name": f"{name}.png", "height": int(ids.shape[0]),
                       "width": int(ids.shape[1])})
        anns.append({"image_id": image_id, "file_name": f"{name}.png", "segments_info": segs})
    atomic_write_text(root / "annotations" / f"panoptic_{split}2017.json",
                      json.dumps({"images": images, "annotations": anns, "categories": CATS}))


def generate(out: str | Path, n_train: int = 240, n_val: int = 60, size: int = 64, seed: int = 0) -> dict[str, Path]:
    """fine/ and coarse/ roots (coarse reuses fine's images through image_dir); returns both paths."""
    out = Path(out)
    fine, coarse = out / "fine", out / "coarse"
    if (fine / "annotations" / "panoptic_val2017.json").is_file() and (coarse / "annotations").is_dir():
        return {"fine": fine, "coarse": coarse}  # already generated (resumed run)
    rng = np.random.default_rng(seed)
    for split, n, base in (("train", n_train, 1), ("val", n_val, 100000)):
        f_items, c_items = [], []
        for i in range(n):
            img, (fi, fs), (ci, cs) = render(rng, size, size)
            f_items.append((base + i, img, fi, fs))
            c_items.append((base + i, None, ci, cs))
        write_split(fine, split, f_items)
        if split == "train":
            write_split(coarse, split, c_items)
    return {"fine": fine, "coarse": coarse}
