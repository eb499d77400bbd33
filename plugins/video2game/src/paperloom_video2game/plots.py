"""Images people look at: side-by-side comparisons (ground truth / NeRF / baked mesh) and the turntable video."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def side_by_side(path: Path, rows: list[list[np.ndarray]], labels: list[str], max_views: int = 4) -> Path:
    """One row per method (`labels`), one column per view; images float (H, W, 3) in [0, 1] or uint8."""
    from paperloom.plots import pyplot, save_figure

    plt = pyplot()
    n = min(max_views, len(rows[0]))
    fig, axes = plt.subplots(len(rows), n, figsize=(2.2 * n, 2.2 * len(rows)), squeeze=False)
    for r, (images, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            im = images[c]
            axes[r][c].imshow(np.clip(im.astype(np.float32) / (255 if im.dtype == np.uint8 else 1), 0, 1))
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
            if c == 0:
                axes[r][c].set_ylabel(label)
    fig.tight_layout()
    return save_figure(fig, path)


def orbit_poses(c2w: np.ndarray, n: int) -> np.ndarray:
    """n cameras on the circle of the dataset's mean camera radius and height, looking at the origin (z up)."""
    from .synthetic import look_at

    centres = c2w[:, :3, 3]
    radius = float(np.linalg.norm(centres[:, :2], axis=1).mean())
    height = float(centres[:, 2].mean())
    return np.stack([look_at(np.array([radius * math.cos(a), radius * math.sin(a), height]), np.zeros(3))
                     for a in np.linspace(0, 2 * math.pi, n, endpoint=False)])


def turntable(path: Path, field, march, frames, n: int, device: str = "cpu") -> Path:
    """An MP4 of the NeRF rendered around the scene (the first frame's intrinsics)."""
    from .data import camera_rays
    from .render import render_rays
    from .synthetic import write_video

    h, w = frames.height, frames.width
    out = []
    for m in orbit_poses(frames.c2w, n):
        o, d = camera_rays(m, frames.intrinsics[0], h, w)
        rgb = render_rays(field, o.to(device), d.to(device), march)["rgb"].cpu().view(h, w, 3).numpy()
        out.append((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    pad = (-h) % 16, (-w) % 16  # H.264 wants multiples of 16
    video = np.stack([np.pad(f, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge") for f in out])
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.mp4")
    write_video(tmp, video, fps=12)
    tmp.replace(path)
    return Path(path)


def browser_figure(path: Path, res: dict) -> Path:
    """The browser check: the page's render, the Python reference render, |difference| x 4, and the dropped object's
    height over time."""
    from paperloom.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    got, want = res["got"], res["want"]
    for ax, im, title in ((axes[0], got, "browser (three.js)"), (axes[1], want, "Python reference"),
                          (axes[2], np.clip(np.abs(got - want) * 4, 0, 1), "|difference| x 4")):
        ax.imshow(np.clip(im, 0, 1))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[2].set_xlabel(f"PSNR {res['metrics']['screenshot_psnr']:.1f} dB", fontsize=9)
    drop = res.get("drop")
    if drop is not None:
        z = drop["trajectory"][:, 2]
        t = np.arange(len(z)) * 10 / 60
        axes[3].plot(t, z, marker=".")
        axes[3].axhline(drop["rest_before"][2], color="gray", lw=0.8, ls="--", label="rest before the drop")
        axes[3].set_xlabel("time (s)")
        axes[3].set_ylabel("height z")
        axes[3].set_title(f"dropped object (came to rest: {int(drop['came_to_rest'])})", fontsize=9)
        axes[3].legend(fontsize=7)
    else:
        axes[3].axis("off")
    fig.tight_layout()
    return save_figure(fig, path)
