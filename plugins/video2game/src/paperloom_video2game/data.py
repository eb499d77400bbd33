"""Posed frames in the formats real users have: nerfstudio / instant-ngp ``transforms.json``, COLMAP models (text or
binary, read by pycolmap), video files (imageio-ffmpeg) and image folders; rays of a pinhole camera.

Convention: camera-to-world 4x4 matrices in the OpenGL / nerfstudio convention (camera looks down -z, y up);
intrinsics (fx, fy, cx, cy) in pixels. A prepared dataset is a folder with ``transforms.json`` + ``images/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paperloom import UserError
from paperloom.io import atomic_write_json, read_json

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV/COLMAP camera axes -> OpenGL


@dataclass
class Frames:
    images: np.ndarray  # (n, H, W, 3) uint8
    c2w: np.ndarray  # (n, 4, 4) float64, OpenGL convention
    intrinsics: np.ndarray  # (n, 4) fx, fy, cx, cy
    names: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return len(self.images)

    def split(self, holdout_every: int) -> tuple[list[int], list[int]]:
        """Train / held-out indices: every `holdout_every`-th frame is held out (the middle one of each block)."""
        test = [i for i in range(len(self)) if holdout_every and i % holdout_every == holdout_every // 2]
        return [i for i in range(len(self)) if i not in test], test


# --------------------------------------------------------------------------- rays


def camera_rays(c2w, intr, height: int, width: int):
    """Rays through the pixel centres of one camera: origins, unit directions (H * W, 3) torch float32."""
    import torch

    c2w = torch.as_tensor(np.asarray(c2w), dtype=torch.float32)
    fx, fy, cx, cy = (float(v) for v in intr)
    j, i = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    d_cam = torch.stack([(i - cx) / fx, -(j - cy) / fy, -torch.ones_like(i)], -1).view(-1, 3)
    d = d_cam @ c2w[:3, :3].T
    d = d / d.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].expand_as(d).contiguous(), d


def all_rays(frames: Frames, idx: list[int]):
    """Rays and target colours of the frames `idx`, concatenated: origins, dirs, rgb (M, 3) float32."""
    import torch

    o, d = zip(*[camera_rays(frames.c2w[i], frames.intrinsics[i], frames.height, frames.width) for i in idx])
    rgb = torch.from_numpy(frames.images[idx].reshape(-1, 3).astype(np.float32) / 255)
    return torch.cat(o), torch.cat(d), rgb


# --------------------------------------------------------------------------- images


def load_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise UserError(f"{path}: frame missing; restore the file or remove its entry")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size and im.size != size:
                im = im.resize(size, Image.BOX if size[0] < im.size[0] else Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8).copy()
    except OSError as e:
        raise UserError(f"{path}: not a readable image ({e}); replace or remove it") from None


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is `max_side` (0 keeps the size)."""
    if not max_side or max(width, height) == max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def read_image_folder(folder: Path, max_side: int = 0) -> tuple[np.ndarray, list[str]]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in IMAGE_EXT)
    if len(files) < 3:
        raise UserError(f"{folder}: {len(files)} images found (.png/.jpg); structure from motion needs at least 3")
    from PIL import Image

    with Image.open(files[0]) as im:
        size0 = im.size
    for f in files:
        with Image.open(f) as im:
            if im.size != size0:
                raise UserError(f"{f}: image size {im.size} differs from {files[0].name}'s {size0}; frames of one "
                                "camera must share a size (resize them, or split the folder)")
    size = target_size(*size0, max_side)
    return np.stack([load_image(f, size) for f in files]), [f.name for f in files]


def read_video(path: Path, fps: float = 0.0, max_frames: int = 0, max_side: int = 0,
               with_index: bool = False) -> np.ndarray | tuple[np.ndarray, list[int]]:
    """Frames of a video file (imageio-ffmpeg), subsampled to `fps` (0: every frame), at most `max_frames`
    (and, `with_index`, the index of each kept frame in the video)."""
    import imageio.v2 as imageio
    from PIL import Image

    if not Path(path).is_file():
        raise UserError(f"input = {str(path)!r}: no such video file")
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
    except Exception as e:  # imageio raises several types for unreadable files
        raise UserError(f"{path}: not a readable video ({type(e).__name__}: {e}); check the file or pass "
                        "an image folder") from None
    src_fps = float(reader.get_meta_data().get("fps") or 0) or 30.0
    every = max(1, round(src_fps / fps)) if fps else 1
    frames, index = [], []
    with reader:
        for k, im in enumerate(reader):
            if k % every:
                continue
            index.append(k)
            im = Image.fromarray(np.asarray(im)[..., :3])
            size = target_size(*im.size, max_side)
            frames.append(np.asarray(im.resize(size, Image.BOX) if size != im.size else im, dtype=np.uint8))
            if max_frames and len(frames) >= max_frames:
                break
    if len(frames) < 3:
        raise UserError(f"{path}: {len(frames)} frames read at fps={fps or src_fps:g}; need at least 3 (raise fps)")
    return (np.stack(frames), index) if with_index else np.stack(frames)


# --------------------------------------------------------------------------- transforms.json


def _intrinsics(d: dict, width: int, height: int, where: str) -> tuple[float, float, float, float] | None:
    for k in ("k1", "k2", "p1", "p2", "k3", "k4"):
        if abs(float(d.get(k, 0.0))) > 1e-6:
            raise UserError(f"{where}: {k} = {d[k]}: distorted cameras are not supported; undistort the images "
                            "first (colmap image_undistorter) and set the distortion terms to 0")
    if "fl_x" in d:
        fx = float(d["fl_x"])
        fy = float(d.get("fl_y", fx))
    elif "camera_angle_x" in d:  # instant-ngp / Blender synthetic
        fx = 0.5 * width / math.tan(0.5 * float(d["camera_angle_x"]))
        fy = 0.5 * height / math.tan(0.5 * float(d["camera_angle_y"])) if "camera_angle_y" in d else fx
    else:
        return None
    return fx, fy, float(d.get("cx", width / 2)), float(d.get("cy", height / 2))


def read_transforms(path: str | Path, max_side: int = 0) -> Frames:
    """A nerfstudio / instant-ngp ``transforms.json`` and the images it names (paths relative to it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    if not path.is_file():
        raise UserError(f"{path}: no transforms.json there; pass the file or its folder")
    meta = read_json(path)
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames:
        raise UserError(f"{path}: key 'frames' is missing or empty; expected a list of "
                        "{file_path, transform_matrix} entries")
    images, c2w, intr, names = [], [], [], []
    for k, fr in enumerate(frames):
        where = f"{path}: frames[{k}]"
        if "file_path" not in fr or "transform_matrix" not in fr:
            raise UserError(f"{where}: needs 'file_path' and 'transform_matrix'")
        img_path = path.parent / fr["file_path"]
        if not img_path.suffix:
            img_path = img_path.with_suffix(".png")  # Blender synthetic files omit the extension
        m = np.asarray(fr["transform_matrix"], dtype=np.float64)
        if m.shape == (3, 4):
            m = np.vstack([m, [0, 0, 0, 1]])
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise UserError(f"{where}: transform_matrix must be a finite 4x4 (or 3x4) matrix, got shape {m.shape}")
        img = load_image(img_path)
        h, w = img.shape[:2]
        want_w, want_h = int(fr.get("w", meta.get("w", w))), int(fr.get("h", meta.get("h", h)))
        if (w, h) != (want_w, want_h):
            raise UserError(f"{img_path}: image is {w}x{h} but {path.name} says w={want_w}, h={want_h}; fix the "
                            "intrinsics or the image")
        k_ = _intrinsics({**meta, **fr}, w, h, where)
        if k_ is None:
            raise UserError(f"{where}: no intrinsics (fl_x/fl_y or camera_angle_x) in the frame or at the top level")
        images.append(img)
        c2w.append(m)
        intr.append(k_)
        names.append(Path(fr["file_path"]).name)
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise UserError(f"{path}: frames have different sizes {sorted(sizes)}; one camera size per dataset")
    f = Frames(np.stack(images), np.stack(c2w), np.asarray(intr, dtype=np.float64), names,
               {k: v for k, v in meta.items() if k != "frames"})
    return resize(f, max_side) if max_side else f


def resize(frames: Frames, max_side: int) -> Frames:
    """Frames downsampled (box filter) so the longer side is `max_side`, intrinsics scaled with them."""
    from PIL import Image

    w, h = target_size(frames.width, frames.height, max_side)
    if (w, h) == (frames.width, frames.height):
        return frames
    imgs = np.stack([np.asarray(Image.fromarray(im).resize((w, h), Image.BOX)) for im in frames.images])
    sx, sy = w / frames.width, h / frames.height
    intr = frames.intrinsics * np.array([sx, sy, sx, sy])
    return Frames(imgs, frames.c2w, intr, frames.names, frames.meta)


def write_transforms(folder: Path, frames: Frames, extra: dict | None = None) -> Path:
    """A nerfstudio-format dataset: images/<name>.png + transforms.json (per-frame intrinsics)."""
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(len(frames)):
        name = Path(frames.names[k]).with_suffix(".png").name
        Image.fromarray(frames.images[k]).save(folder / "images" / name)
        fx, fy, cx, cy = (float(v) for v in frames.intrinsics[k])
        out.append({"file_path": f"images/{name}", "transform_matrix": frames.c2w[k].tolist(), "fl_x": fx,
                    "fl_y": fy, "cx": cx, "cy": cy, "w": frames.width, "h": frames.height})
    meta = {"camera_model": "OPENCV", "w": frames.width, "h": frames.height, **(extra or {}), "frames": out}
    atomic_write_json(folder / "transforms.json", meta)
    return folder / "transforms.json"


# --------------------------------------------------------------------------- COLMAP


def colmap_camera(camera, where: str) -> tuple[float, float, float, float]:
    model = str(getattr(camera.model, "name", camera.model))
    p = [float(v) for v in camera.params]
    if model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2]
    if model == "PINHOLE":
        return p[0], p[1], p[2], p[3]
    if model in ("SIMPLE_RADIAL", "RADIAL") and all(abs(v) < 1e-3 for v in p[3:]):
        return p[0], p[0], p[1], p[2]  # negligible distortion: treated as a pinhole
    if model in ("OPENCV", "FULL_OPENCV") and all(abs(v) < 1e-3 for v in p[4:]):
        return p[0], p[1], p[2], p[3]
    raise UserError(f"{where}: camera model {model} with distortion {p[3:]} is not supported; undistort first "
                    "(colmap image_undistorter writes PINHOLE cameras)")


def reconstruction_frames(rec, image_dir: Path, where: str, max_side: int = 0) -> tuple[Frames, np.ndarray]:
    """Frames of a pycolmap Reconstruction (images sorted by name), and its 3D points (P, 3)."""
    images = sorted(rec.images.values(), key=lambda im: im.name)
    if not images:
        raise UserError(f"{where}: the model registers no images")
    imgs, c2w, intr, names, sizes = [], [], [], [], set()
    for im in images:
        cam = rec.cameras[im.camera_id]
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        w2c = np.vstack([np.asarray(pose.matrix()), [0, 0, 0, 1]])
        c2w.append(np.linalg.inv(w2c) @ CV_TO_GL)
        img = load_image(image_dir / im.name)
        if img.shape[:2] != (cam.height, cam.width):
            raise UserError(f"{image_dir / im.name}: image is {img.shape[1]}x{img.shape[0]} but its COLMAP camera "
                            f"{im.camera_id} is {cam.width}x{cam.height}; inconsistent intrinsics")
        imgs.append(img)
        intr.append(colmap_camera(cam, f"{where}: camera {im.camera_id}"))
        names.append(im.name)
        sizes.add(img.shape)
    if len(sizes) > 1:
        raise UserError(f"{where}: images have different sizes {sorted(sizes)}; one camera size per dataset")
    pts = np.array([p.xyz for p in rec.points3D.values()]).reshape(-1, 3)
    f = Frames(np.stack(imgs), np.stack(c2w), np.asarray(intr), names)
    return (resize(f, max_side) if max_side else f), pts


def read_colmap(model_dir: str | Path, image_dir: str | Path, max_side: int = 0) -> tuple[Frames, np.ndarray]:
    """A COLMAP sparse model folder (cameras/images/points3D as .txt or .bin) and its image folder."""
    import pycolmap

    model_dir, image_dir = Path(model_dir), Path(image_dir)
    have = [p.name for p in model_dir.glob("cameras.*")] if model_dir.is_dir() else []
    if not have:
        raise UserError(f"{model_dir}: no COLMAP model (cameras.txt or cameras.bin); pass the sparse/0 folder")
    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as e:  # pycolmap raises ValueError / RuntimeError on torn files
        raise UserError(f"{model_dir}: unreadable COLMAP model ({e}); re-export it") from None
    return reconstruction_frames(rec, image_dir, str(model_dir), max_side)


# --------------------------------------------------------------------------- normalisation into the scene box


def normalization(c2w: np.ndarray, radius: float = 2.5) -> np.ndarray:
    """A similarity T (4x4) for x' = T x: mean camera up -> +z, the point nearest every optical axis -> origin,
    the mean camera distance -> `radius` (so the observed content sits in the unit cube, the rest contracts)."""
    up = c2w[:, :3, 1].mean(0)
    up /= np.linalg.norm(up) + 1e-12
    rot = _rotation_to(up, np.array([0.0, 0.0, 1.0]))
    centres, fwd = c2w[:, :3, 3], -c2w[:, :3, 2]
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for c, f in zip(centres, fwd):
        p = np.eye(3) - np.outer(f, f) / (f @ f)
        a += p
        b += p @ c
    centre = np.linalg.solve(a, b) if np.linalg.cond(a) < 1e6 else centres.mean(0)
    dist = np.linalg.norm(centres - centre, axis=1).mean()
    scale = radius / max(dist, 1e-9)
    t = np.eye(4)
    t[:3, :3] = scale * rot
    t[:3, 3] = -scale * rot @ centre
    return t


def apply_similarity(t: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world matrices after x' = T x (rotation part re-orthonormalised, scale moved out)."""
    s = np.cbrt(np.linalg.det(t[:3, :3]))
    out = c2w.copy()
    out[:, :3, :3] = (t[:3, :3] / s) @ c2w[:, :3, :3]
    out[:, :3, 3] = (t[:3, :3] @ c2w[:, :3, 3].T).T + t[:3, 3]
    return out


def _rotation_to(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation taking unit vector a to unit vector b (Rodrigues)."""
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:
        axis = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)
