"""Glyph outlines: any TTF/OTF -> closed cubic Bezier paths on the canvas (Dynamic Typography, Sec. 3 / 4.1).

A path is stored like diffvg stores a closed cubic path: ``points (3 * S, 2)``, segment ``k`` being
``points[3k], points[3k+1], points[3k+2], points[(3k+3) % 3S]``. Lines and quadratics are elevated to
cubics (exactly), then the longest segments are split at t = 1/2 until the letter holds the control-point
budget (the reference's "level of curve subdivision", Word-As-Image's per-letter targets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paperloom import UserError


def default_font() -> str:
    """DejaVu Sans, which matplotlib ships (no download)."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def elevate_line(p0, p1) -> np.ndarray:
    """A line as the cubic with control points at 1/3 and 2/3 (traces the same points)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    return np.stack([p0, p0 + (p1 - p0) / 3, p0 + 2 * (p1 - p0) / 3, p1])


def elevate_quadratic(p0, q, p2) -> np.ndarray:
    """Degree elevation of a quadratic Bezier: c1 = p0 + 2/3 (q - p0), c2 = p2 + 2/3 (q - p2)."""
    p0, q, p2 = (np.asarray(v, float) for v in (p0, q, p2))
    return np.stack([p0, p0 + 2 / 3 * (q - p0), p2 + 2 / 3 * (q - p2), p2])


def split_cubic(seg: np.ndarray, t: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """de Casteljau split of one cubic (4, 2) into two that trace the same curve."""
    p0, p1, p2, p3 = seg
    a, b, c = p0 + t * (p1 - p0), p1 + t * (p2 - p1), p2 + t * (p3 - p2)
    d, e = a + t * (b - a), b + t * (c - b)
    m = d + t * (e - d)
    return np.stack([p0, a, d, m]), np.stack([m, e, c, p3])


def _seg_length(seg: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(seg, axis=0), axis=1).sum())  # control polygon length (an upper bound)


class _CubicPen:
    """A fontTools pen collecting closed contours as lists of cubic segments (4, 2)."""

    def __init__(self, glyph_set):
        from fontTools.pens.basePen import BasePen

        outer = self

        class Pen(BasePen):
            def _moveTo(self, p):
                outer.current, outer.start = [], np.asarray(p, float)
                outer.last = outer.start

            def _lineTo(self, p):
                outer.current.append(elevate_line(outer.last, p))
                outer.last = np.asarray(p, float)

            def _qCurveToOne(self, p1, p2):
                outer.current.append(elevate_quadratic(outer.last, p1, p2))
                outer.last = np.asarray(p2, float)

            def _curveToOne(self, p1, p2, p3):
                outer.current.append(np.stack([outer.last, p1, p2, p3]).astype(float))
                outer.last = np.asarray(p3, float)

            def _closePath(self):
                if np.linalg.norm(outer.last - outer.start) > 1e-9:
                    outer.current.append(elevate_line(outer.last, outer.start))
                if outer.current:
                    outer.contours.append(outer.current)
                outer.current = []

            _endPath = _closePath

        self.contours: list[list[np.ndarray]] = []
        self.current: list[np.ndarray] = []
        self.pen = Pen(glyph_set)


@dataclass
class Glyph:
    """One letter on a square canvas: closed cubic paths (canvas pixels, y down) and where it sits in its word."""

    paths: list[np.ndarray]  # each (3 * S_i, 2)
    canvas: int
    to_word: tuple[float, float, float]  # canvas -> word coordinates: x_w = s * x + tx, y_w = s * y + ty
    word_paths: list[list[np.ndarray]] = field(default_factory=list)  # other letters (word coordinates)
    word_size: tuple[float, float] = (0.0, 0.0)
    letter: str = ""

    @property
    def sizes(self) -> list[int]:
        return [len(p) for p in self.paths]

    @property
    def points(self) -> np.ndarray:
        return np.concatenate(self.paths)


def contours_to_paths(contours: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Lists of cubic segments -> diffvg-style point arrays (shared end points dropped)."""
    return [np.concatenate([seg[:3] for seg in c]) for c in contours]


def paths_to_segments(path: np.ndarray) -> np.ndarray:
    """(3S, 2) -> (S, 4, 2)."""
    s = len(path) // 3
    idx = (np.arange(s)[:, None] * 3 + np.arange(4)[None]) % len(path)
    return path[idx]


def subdivide(contours: list[list[np.ndarray]], budget: int) -> list[list[np.ndarray]]:
    """Split the longest segment at t = 1/2 until the letter has >= `budget` control points (3 per segment)."""
    contours = [list(c) for c in contours]
    while 3 * sum(len(c) for c in contours) < budget:
        ci, si = max(((i, j) for i, c in enumerate(contours) for j in range(len(c))),
                     key=lambda ij: _seg_length(contours[ij[0]][ij[1]]))
        a, b = split_cubic(contours[ci][si])
        contours[ci][si:si + 1] = [a, b]
    return contours


def load_font(path: str):
    from fontTools.ttLib import TTFont, TTLibError

    p = Path(path)
    if not p.is_file():
        raise UserError(f"font {path} does not exist; set font= to a .ttf/.otf file (empty: DejaVu Sans)")
    try:
        return TTFont(str(p), lazy=True)
    except (TTLibError, OSError, AssertionError, ValueError) as e:
        raise UserError(f"font {path} is not a readable TTF/OTF file ({e}); pass a TrueType or OpenType font") from None


def glyph_contours(font, char: str) -> tuple[list[list[np.ndarray]], float]:
    """Outline (font units, y up) of one character and its advance width."""
    cmap = font.getBestCmap() or {}
    name = cmap.get(ord(char))
    if name is None:
        raise UserError(f"the font has no glyph for {char!r}; choose another font= or word=")
    gs = font.getGlyphSet()
    pen = _CubicPen(gs)
    gs[name].draw(pen.pen)
    return pen.contours, float(gs[name].width)


def extract(word: str, letter: int, font: str = "", control_points: int = 100, canvas: int = 256,
            margin: float = 0.1) -> Glyph:
    """Letter `letter` (0-based index) of `word` as closed cubic paths on a `canvas` square, the rest of the word
    kept for compositing."""
    if not word:
        raise UserError("word is empty; set word=... (e.g. word=CAMEL)")
    if not 0 <= letter < len(word):
        raise UserError(f"letter={letter} is outside the word {word!r}; expected 0..{len(word) - 1}")
    if word[letter].isspace():
        raise UserError(f"letter={letter} of {word!r} is a space; choose a visible letter")
    f = load_font(font or default_font())
    ascent = float(f["hhea"].ascent) if "hhea" in f else 1000.0
    x, word_paths, mine = 0.0, [], None
    for i, ch in enumerate(word):
        contours, adv = ([], 0.0) if ch.isspace() else glyph_contours(f, ch)
        if ch.isspace():
            adv = float(f["hmtx"][f.getBestCmap().get(ord(" "), ".notdef")][0]) if f.getBestCmap() else 500.0
        # font units (y up) -> word coordinates (y down, baseline at `ascent`)
        placed = [[np.stack([s[:, 0] + x, ascent - s[:, 1]], 1) for s in c] for c in contours]
        if i == letter:
            if not placed:
                raise UserError(f"{ch!r} has an empty outline in this font; choose another letter")
            mine = placed
        else:
            word_paths.append(contours_to_paths(placed) if placed else [])
        x += adv
    descent = float(-f["hhea"].descent) if "hhea" in f else 250.0
    pts = np.concatenate([s for c in mine for s in c])
    lo, hi = pts.min(0), pts.max(0)
    scale = (1 - 2 * margin) * canvas / float((hi - lo).max())
    center = (lo + hi) / 2
    to_canvas = [[(s - center) * scale + canvas / 2 for s in c] for c in subdivide(mine, control_points)]
    s_inv = 1 / scale
    to_word = (s_inv, float(center[0] - canvas / 2 * s_inv), float(center[1] - canvas / 2 * s_inv))
    return Glyph(contours_to_paths(to_canvas), canvas, to_word, word_paths, (x, ascent + descent), word[letter])
