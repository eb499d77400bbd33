"""Structure preservation (Delaunay restricted to the glyph, conformal angle loss, transition), SSIM, schedules."""

import math

import numpy as np
import pytest
import torch
from paperloom_dynamic_typography.glyph import extract
from paperloom_dynamic_typography.losses import (
    ConformalLoss,
    Legibility,
    cos_schedule,
    interior_triangles,
    linear_schedule,
    ssim,
    triangle_angles,
)
from paperloom_dynamic_typography.raster import coverage, polygon_edges
from reference import triangle_angles as ref_angles
from reference import winding


@pytest.mark.parametrize("letter", ["O", "M"])
def test_conformal_loss_is_zero_at_init_and_grows_with_distortion(letter):
    g = extract(letter, 0, control_points=60, canvas=64)
    loss = ConformalLoss(g.points, g.sizes)
    pts = torch.tensor(g.points, dtype=torch.float32)
    assert len(loss.faces) > 10 and float(loss(pts)) == 0.0
    th = 0.4  # a rigid motion keeps every angle
    rot = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    assert float(loss(pts @ rot.T + torch.tensor([5.0, -3.0]))) < 1e-9
    shear = pts @ torch.tensor([[1.0, 0.0], [0.6, 1.0]]).T
    assert float(loss(shear)) > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_angles_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 30, size=(12, 2))
    faces = rng.integers(0, 12, size=(7, 3))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    fast = triangle_angles(torch.tensor(pts), torch.tensor(faces)).numpy()
    assert np.allclose(fast, ref_angles(pts.tolist(), faces.tolist()), atol=1e-9)


def test_triangulation_is_restricted_to_the_glyph_interior():
    g = extract("O", 0, control_points=60, canvas=64)  # the counter of the O must hold no triangle
    faces = interior_triangles(g.points, g.sizes)
    a, b = polygon_edges(torch.tensor(g.points)[None], g.sizes, 8, None)
    edges = [(float(p[0]), float(p[1]), float(q[0]), float(q[1])) for p, q in zip(a[0], b[0])]
    cents = g.points[faces].mean(1)
    assert all(winding(x, y, edges) != 0 for x, y in cents)
    assert not np.any(np.linalg.norm(cents - 32, axis=1) < 8)  # nothing in the middle of the counter


def test_transition_loss_zero_for_identical_frames_positive_for_distorted():
    g = extract("L", 0, control_points=40, canvas=64)
    loss = ConformalLoss(g.points, g.sizes)
    base = torch.tensor(g.points, dtype=torch.float32)
    assert float(loss.transition(base[None].repeat(3, 1, 1), base)) == 0.0
    frames = base[None].repeat(3, 1, 1).clone()
    frames[1] = frames[1] @ torch.tensor([[1.0, 0.5], [0.0, 1.0]]).T
    assert float(loss.transition(frames, base)) > 1e-3


def test_ssim_and_the_legibility_proxy():
    g = extract("E", 0, control_points=40, canvas=48)
    cov = coverage(torch.tensor(g.points, dtype=torch.float32)[None], g.sizes, 48)
    assert float(ssim(cov, cov)) == pytest.approx(1.0, abs=1e-5)
    leg = Legibility(cov, "ssim-proxy")
    assert leg.name == "ssim-proxy" and float(leg(cov)) == pytest.approx(0.0, abs=1e-5)
    assert float(leg(torch.roll(cov, 4, -1))) > 0.1


def test_schedules_match_the_reference_formulas():
    assert cos_schedule(500, 1000, 4.0, 1.0) == pytest.approx(5.0)  # peak at mid-run
    assert cos_schedule(0, 1000, 4.0, 1.0) == pytest.approx(1.0)
    assert cos_schedule(800, 1000, 4.0, 1.0, decay=False) == 5.0
    assert linear_schedule(250, 1000, 250, 6.0, 0.0) == pytest.approx(6.0)
    assert linear_schedule(1000, 1000, 250, 6.0, 0.0) == pytest.approx(12.0)


def test_lpips_requested_without_weights_is_a_one_line_error(monkeypatch):
    from paperloom_dynamic_typography import losses

    from paperloom import UserError

    monkeypatch.setattr(losses, "lpips_available", lambda: False)
    cov = torch.zeros(1, 8, 8)
    with pytest.raises(UserError, match="legibility=ssim-proxy"):
        Legibility(cov, "lpips")
    assert Legibility(cov, "auto").name == "ssim-proxy"  # auto falls back, and says so
