"""Ray marching: the grid-skipping, early-terminating renderer vs the dense one and a per-ray reference; losses."""

import numpy as np
import pytest
import torch
from conftest import random_rays
from paperloom_video2game.config import MarchConfig
from paperloom_video2game.model import contract
from paperloom_video2game.render import distortion_loss, render, step_edges
from reference import composite, distortion

MARCH = MarchConfig(near=0.5, far=20.0, dt_min=0.01, dt_max=0.5, cone=1 / 128, chunk=16, t_threshold=1e-4)


def test_step_sizes_follow_the_cone_rule():
    e = step_edges(MARCH).double()
    dt = (e[1:] - e[:-1])[:-1]  # the last step is cut at far
    want = (e[:-2] * MARCH.cone).clamp(MARCH.dt_min, MARCH.dt_max)
    assert torch.allclose(dt, want, atol=1e-6) and float(e[0]) == MARCH.near and float(e[-1]) == MARCH.far


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_renderer_equals_the_per_ray_quadrature(blob, seed):
    o, d = random_rays(24, seed)
    out = render(blob, o, d, MARCH, grid=False, early_stop=False)
    e = step_edges(MARCH)
    t0, dt = e[:-1], e[1:] - e[:-1]
    t = t0 + 0.5 * dt
    for i in range(len(o)):
        y = contract(o[i] + t[:, None] * d[i])
        sigma, rgb = blob(y, d[i].expand(len(t), 3))
        c, dep, op = composite(sigma.double().numpy(), rgb.double().numpy(), dt.double().numpy(), t.double().numpy())
        assert np.allclose(out["rgb"][i].numpy(), c, atol=1e-5)
        assert np.allclose(float(out["depth"][i]), dep, atol=1e-4)
        assert np.allclose(float(out["opacity"][i]), op, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_occupancy_grid_renderer_equals_the_dense_renderer(blob, seed):
    """Cells where the field's density is negligible hold no contribution, so skipping them (and stopping opaque
    rays) changes the image by less than the transmittance threshold; far fewer samples are evaluated."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):  # a few jittered samples per cell (max-decayed), as during training
        blob.grid.update(blob.density, threshold=1e-3, decay=1.0, samples=4, generator=g)
    o, d = random_rays(200, seed)
    dense = render(blob, o, d, MARCH, grid=False, early_stop=False)
    fast = render(blob, o, d, MARCH, grid=True, early_stop=True)
    assert 0.0 < float(blob.grid.mask.float().mean()) < 0.2
    assert fast["samples"] < 0.2 * dense["samples"]
    for k in ("rgb", "opacity"):
        assert torch.allclose(fast[k], dense[k], atol=2e-3), (k, float((fast[k] - dense[k]).abs().max()))
    assert float(dense["opacity"].max()) > 0.99  # some rays are opaque: early termination was exercised


def test_gradients_flow_through_the_skipping_renderer(blob):
    from paperloom_video2game.config import NeRFConfig
    from paperloom_video2game.model import NeRFField

    field = NeRFField(NeRFConfig(levels=4, log2_table=10, max_res=64, hidden=16, grid_res=16))
    o, d = random_rays(32, 0)
    out = render(field, o, d, MARCH, jitter=torch.rand(32, 1), weights=True)
    (out["rgb"].sum() + out["weights"].sum()).backward()
    assert all(p.grad is not None for p in field.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distortion_loss_equals_the_double_sum(seed):
    g = np.random.default_rng(seed)
    n = int(g.integers(3, 40))
    w = g.uniform(0, 1, n) / n
    s = np.sort(g.uniform(0, 1, n))
    ds = g.uniform(0.001, 0.05, n)
    got = distortion_loss(torch.tensor(w)[None], torch.tensor(s)[None], torch.tensor(ds)[None])
    assert np.isclose(float(got), distortion(w, s, ds), rtol=1e-10)


def test_normal_prior_renders_analytic_normals(blob):
    """-grad sigma of a radial blob points away from its centre: the rendered normal of a ray aimed at the centre
    faces back toward the camera."""
    o = torch.tensor([[2.0, -0.1, 0.0]])
    d = torch.tensor([[-1.0, 0.0, 0.0]])
    out = render(blob, o, d, MARCH, grid=False, early_stop=False, normals=True)
    n = torch.nn.functional.normalize(out["normal"].detach(), dim=-1)
    assert float(n[0, 0]) > 0.95
