"""Glyph extraction: exact degree elevation, subdivision that keeps the curve, fonts, word layout, errors."""

import numpy as np
import pytest
from paperloom_dynamic_typography.glyph import (
    default_font,
    elevate_line,
    elevate_quadratic,
    extract,
    paths_to_segments,
    split_cubic,
    subdivide,
)
from reference import bezier

from paperloom import UserError

T = np.linspace(0, 1, 17)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_elevated_cubic_equals_the_quadratic_and_the_line(seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(3, 2)) * 50
    cubic = elevate_quadratic(*q)
    for t in T:
        assert np.allclose(bezier(cubic, t), bezier(q, t), atol=1e-9)
    line = rng.normal(size=(2, 2)) * 50
    cl = elevate_line(*line)
    for t in T:
        assert np.allclose(bezier(cl, t), bezier(line, t), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_split_traces_the_same_curve(seed):
    seg = np.random.default_rng(seed).normal(size=(4, 2))
    a, b = split_cubic(seg)
    for t in T:
        assert np.allclose(bezier(a, t), bezier(seg, t / 2)) and np.allclose(bezier(b, t), bezier(seg, 0.5 + t / 2))


def test_subdivide_reaches_the_budget_and_keeps_the_shape():
    contours = [[elevate_line((0, 0), (10, 0)), elevate_line((10, 0), (0, 10)), elevate_line((0, 10), (0, 0))]]
    out = subdivide(contours, 40)
    assert 3 * len(out[0]) >= 40 and 3 * len(out[0]) < 43
    pts = np.concatenate([s[:, None] for s in out[0]], 1)[0]  # segment starts stay on the triangle
    assert np.all((pts[:, 0] >= -1e-9) & (pts[:, 1] >= -1e-9) & (pts.sum(1) <= 10 + 1e-9))


def test_extract_letter_with_a_hole_and_word_layout():
    g = extract("HOLA", 1, control_points=80, canvas=128)
    assert len(g.sizes) == 2 and sum(g.sizes) >= 80 and all(s % 3 == 0 for s in g.sizes)  # outer + counter of O
    assert g.points.min() >= 0.1 * 128 - 1e-6 and g.points.max() <= 0.9 * 128 + 1e-6  # fitted with a 10% margin
    assert len(g.word_paths) == 3 and g.letter == "O"
    segs = paths_to_segments(g.paths[0])
    assert np.allclose(segs[1:, 0], segs[:-1, 3]) and np.allclose(segs[-1, 3], segs[0, 0])  # closed, continuous
    s, tx, ty = g.to_word  # the letter maps back between H and L in the word
    x = g.points[:, 0] * s + tx
    h_right = max(p[:, 0].max() for p in g.word_paths[0])
    assert x.min() > h_right - 1e-6 and x.max() < g.word_size[0]


def test_cff_otf_font(tmp_path):
    """An OpenType (CFF, cubic) font written with fontTools is read as well."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    pen = T2CharStringPen(600, None)
    pen.moveTo((100, 0))
    pen.curveTo((100, 400), (500, 400), (500, 0))
    pen.lineTo((300, -200))
    pen.closePath()
    fb = FontBuilder(1000, isTTF=False)
    fb.setupGlyphOrder([".notdef", "A"])
    fb.setupCharacterMap({ord("A"): "A"})
    empty = T2CharStringPen(600, None)
    fb.setupCFF("Test", {"FullName": "Test"}, {".notdef": empty.getCharString(), "A": pen.getCharString()}, {})
    fb.setupHorizontalMetrics({".notdef": (600, 0), "A": (600, 100)})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Test", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    fb.save(str(tmp_path / "t.otf"))
    g = extract("A", 0, font=str(tmp_path / "t.otf"), control_points=6, canvas=64)
    assert g.sizes == [9]  # the cubic, the line, the closing line: no subdivision needed
    sc, tx, ty = g.to_word
    seg = paths_to_segments(g.paths[0])[0] * sc + np.array([tx, ty])
    font_units = np.stack([seg[:, 0], 800 - seg[:, 1]], 1)  # word coordinates -> font units (y up, ascent 800)
    assert np.allclose(font_units, [[100, 0], [100, 400], [500, 400], [500, 0]], atol=1e-6)  # kept exactly


def test_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        extract("AB", 0, font=str(tmp_path / "none.ttf"))
    (tmp_path / "bad.ttf").write_bytes(b"not a font")
    with pytest.raises(UserError, match="not a readable TTF/OTF"):
        extract("AB", 0, font=str(tmp_path / "bad.ttf"))
    with pytest.raises(UserError, match="outside the word"):
        extract("AB", 5)
    with pytest.raises(UserError, match="no glyph"):
        extract("A\u4e2d", 1, font=default_font())
    with pytest.raises(UserError, match="space"):
        extract("A B", 1)
