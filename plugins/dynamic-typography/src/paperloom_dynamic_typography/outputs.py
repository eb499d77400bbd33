"""Outputs: an SVG per frame (the letter, and the letter composited back into its word), PNG frames rendered from
the SVGs by cairosvg, GIF and MP4 (imageio), a contact sheet. Every file is written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from paperloom import UserError
from paperloom.io import atomic_write_text

from .glyph import Glyph


def path_d(points: np.ndarray, sizes: list[int]) -> str:
    """SVG path data of closed cubic paths in diffvg layout."""
    out, off = [], 0
    for n in sizes:
        p = points[off:off + n]
        off += n
        cmds = [f"M {p[0, 0]:.3f} {p[0, 1]:.3f}"]
        for k in range(0, n, 3):
            c1, c2, e = p[k + 1], p[k + 2], p[(k + 3) % n]
            cmds.append(f"C {c1[0]:.3f} {c1[1]:.3f} {c2[0]:.3f} {c2[1]:.3f} {e[0]:.3f} {e[1]:.3f}")
        out.append(" ".join(cmds) + " Z")
    return " ".join(out)


def _svg(width: float, height: float, body: str, note: str, px: tuple[int, int] | None = None) -> str:
    w, h = px or (width, height)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="0 0 {width:.3f} {height:.3f}">\n<!-- {note} -->\n'
            f'<rect x="0" y="0" width="{width:.3f}" height="{height:.3f}" fill="white"/>\n{body}\n</svg>\n')


def letter_svg(points: np.ndarray, glyph: Glyph, note: str, fill_rule: str = "nonzero") -> str:
    return _svg(glyph.canvas, glyph.canvas, f'<path d="{path_d(points, glyph.sizes)}" fill="black" '
                                            f'fill-rule="{fill_rule}"/>', note)


def word_bounds(glyph: Glyph, frames: np.ndarray) -> tuple[float, float, float, float]:
    """One box (word coordinates) holding the word and the letter in every frame, so all frames match in size."""
    s, tx, ty = glyph.to_word
    pts = frames.reshape(-1, 2) * s + np.array([tx, ty])
    w, h = glyph.word_size
    pad = 0.15 * h
    return (min(pts[:, 0].min(), 0) - pad, min(pts[:, 1].min(), 0) - pad, max(pts[:, 0].max(), w) + pad,
            max(pts[:, 1].max(), h) + pad)


def word_svg(points: np.ndarray, glyph: Glyph, note: str, bounds: tuple[float, float, float, float] | None = None,
             height_px: int = 160, fill_rule: str = "nonzero", color: str = "#c0392b") -> str:
    """The animated letter (canvas coordinates, mapped back by glyph.to_word) among the word's other letters."""
    s, tx, ty = glyph.to_word
    pts = points * s + np.array([tx, ty])
    x0, y0, x1, y1 = bounds or word_bounds(glyph, points[None])
    body = [f'<path d="{path_d(np.concatenate(ps), [len(p) for p in ps])}" fill="black" fill-rule="{fill_rule}"/>'
            for ps in glyph.word_paths if ps]
    body.append(f'<path d="{path_d(pts, glyph.sizes)}" fill="{color}" fill-rule="{fill_rule}"/>')
    inner = f'<g transform="translate({-x0:.3f} {-y0:.3f})">' + "\n".join(body) + "</g>"
    px = (2 * round(height_px * (x1 - x0) / (y1 - y0) / 2), 2 * round(height_px / 2))  # even sizes for MP4
    return _svg(x1 - x0, y1 - y0, inner, note, px)


def svg_to_array(svg: str | bytes, source: str = "svg", size: tuple[int, int] | None = None) -> np.ndarray:
    """cairosvg -> (H, W, 3) uint8."""
    import io

    import cairosvg
    from PIL import Image

    data = svg.encode() if isinstance(svg, str) else svg
    kw = {"output_width": size[0], "output_height": size[1]} if size else {}
    try:
        png = cairosvg.svg2png(bytestring=data, background_color="white", **kw)
    except Exception as e:  # cairosvg raises parser-specific errors
        raise UserError(f"{source} is not a valid SVG ({type(e).__name__}: {e}); pass SVG files written by "
                        "dynamic-typography:animate or another SVG 1.1 writer") from None
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _atomic_path(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_png(path: Path, img: np.ndarray) -> Path:
    from PIL import Image

    return _atomic_path(Path(path), lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))


def write_gif(path: Path, frames: list[np.ndarray], fps: int = 8) -> Path:
    import imageio.v3 as iio

    return _atomic_path(Path(path), lambda tmp: iio.imwrite(tmp, np.stack(frames), extension=".gif",
                                                            duration=int(1000 / fps), loop=0))


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 8) -> Path:
    import imageio.v2 as imageio

    def write(tmp):
        with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=2,
                                ffmpeg_log_level="error") as w:
            for f in frames:
                w.append_data(f)

    return _atomic_path(Path(path), write)


def contact_sheet(path: Path, frames: list[np.ndarray], title: str, cols: int = 4) -> Path:
    """A grid of frames with the run's title (which carries the guidance disclosure)."""
    from paperloom.plots import pyplot, save_figure

    plt = pyplot()
    rows = (len(frames) + cols - 1) // cols
    h, w = frames[0].shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6 * w / h, rows * 1.6 + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(frames):
            ax.imshow(frames[i])
            ax.set_title(f"frame {i + 1}", fontsize=7)
    import textwrap

    fig.suptitle(textwrap.fill(title, 100), fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_animation(out: Path, glyph: Glyph, base: np.ndarray, frames: np.ndarray, note: str, fps: int = 8,
                    fill_rule: str = "nonzero") -> dict[str, Path]:
    """svg/letter_XX.svg, svg/word_XX.svg, png/word_XX.png, base.svg, animation.gif/.mp4, contact_sheet.png."""
    out = Path(out)
    words, bounds = [], word_bounds(glyph, frames)
    atomic_write_text(out / "svg" / "base.svg", letter_svg(base, glyph, note + " | base shape", fill_rule))
    for i, f in enumerate(frames):
        atomic_write_text(out / "svg" / f"letter_{i:03d}.svg", letter_svg(f, glyph, note, fill_rule))
        svg = word_svg(f, glyph, note, bounds, fill_rule=fill_rule)
        atomic_write_text(out / "svg" / f"word_{i:03d}.svg", svg)
        words.append(svg_to_array(svg))
    return encode(out, words, note, fps)


def encode(out: Path, images: list[np.ndarray], title: str, fps: int = 8) -> dict[str, Path]:
    """PNG frames, GIF, MP4 and a contact sheet of same-size RGB frames."""
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise UserError(f"frames have different sizes {sorted(shapes)}; render frames of one size")
    for i, im in enumerate(images):
        write_png(out / "png" / f"frame_{i:03d}.png", im)
    return {"gif": write_gif(out / "animation.gif", images, fps), "mp4": write_mp4(out / "animation.mp4", images, fps),
            "contact_sheet": contact_sheet(out / "contact_sheet.png", images, title)}


def read_svg_frames(folder: str, pattern: str = "*.svg") -> list[tuple[str, bytes]]:
    if not folder:
        raise UserError("frames is empty; set frames= to a folder of SVG frames (e.g. <animate run>/svg)")
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"frames={folder} is not a folder; pass a folder of SVG frames (e.g. <run>/svg)")
    files = sorted(root.glob(pattern))
    if not files:
        raise UserError(f"no files match {pattern} in {folder}; set pattern= (e.g. 'word_*.svg')")
    return [(str(f), f.read_bytes()) for f in files]
