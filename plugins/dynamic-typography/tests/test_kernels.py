"""The Triton rasterizer kernel (run by the Triton interpreter on CPU, TRITON_INTERPRET=1) == the torch path:
winding numbers, band and nearest edges, coverage and gradients, on random self-intersecting paths and glyphs."""

import numpy as np
import pytest
import torch
from paperloom_dynamic_typography.glyph import extract
from paperloom_dynamic_typography.kernels import HAS_TRITON, backend_for, triton_winding_nearest
from paperloom_dynamic_typography.raster import coverage, polygon_edges, winding_and_band

pytestmark = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")


def random_paths(seed, size, batch=2):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(1, size - 1, size=(batch, 18, 2)), dtype=torch.float32)  # 2 paths x 3 cubics


@pytest.mark.parametrize("seed,size,ss", [(0, 11, 1), (1, 9, 2), (2, 13, 2)])
def test_kernel_winding_and_nearest_edge_equal_the_torch_path(seed, size, ss):
    pts = random_paths(seed, size)
    a, b = polygon_edges(pts * ss, [9, 9], 2, 1.0)
    hs = ws = size * ss
    wind, band, edge = winding_and_band(a, b, hs, ws)
    k_wind, k_dist, k_edge = triton_winding_nearest(a, b, hs, ws, block_p=32, block_e=16)  # several edge chunks
    assert a.shape[1] > 16 and torch.equal(k_wind.reshape(2, -1).long(), wind)
    k_band = (k_dist.reshape(-1) < 1.0).nonzero(as_tuple=True)[0]
    assert torch.equal(k_band, band)
    # nearest edge: the same distance (ties at shared polygon vertices may pick either edge of the vertex)
    flat_a, flat_b = a.reshape(-1, 2), b.reshape(-1, 2)
    frame = band // (hs * ws)
    centers = torch.stack([band % (hs * ws) % ws, band % (hs * ws) // ws], -1).float() + 0.5

    def dist(e):
        i = frame * a.shape[1] + e
        ab, ap = flat_b[i] - flat_a[i], centers - flat_a[i]
        t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
        return (ap - t[:, None] * ab).norm(dim=-1)

    torch.testing.assert_close(dist(k_edge.reshape(-1)[band]), dist(edge), atol=1e-5, rtol=0)
    torch.testing.assert_close(k_dist.reshape(-1)[band], dist(edge), atol=1e-5, rtol=0)


@pytest.mark.parametrize("rule", ["nonzero", "evenodd"])
def test_kernel_coverage_and_gradients_equal_the_torch_path(rule):
    g = extract("R", 0, control_points=24, canvas=20)
    torch.manual_seed(0)
    base = torch.tensor(g.points, dtype=torch.float32)
    frames = torch.stack([base + torch.randn_like(base) * 0.4 for _ in range(3)])
    w = torch.rand(3, 20, 20)
    out = {}
    for backend in ("torch", "triton"):
        pts = frames.clone().requires_grad_()
        cov = coverage(pts, g.sizes, 20, supersample=2, fill_rule=rule, backend=backend)
        (cov * w).sum().backward()
        out[backend] = (cov.detach(), pts.grad)
    torch.testing.assert_close(out["triton"][0], out["torch"][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["triton"][1], out["torch"][1], atol=1e-4, rtol=1e-4)
    assert out["torch"][1].abs().max() > 0.1  # the gradients compared are not all zero


def test_backend_choice():
    cpu = torch.zeros(1)
    assert backend_for("auto", cpu) == "torch" and backend_for("torch", cpu) == "torch"
    assert backend_for("triton", cpu) == "triton"  # the interpreter is on in these tests
    with pytest.raises(ValueError, match="backend=.cuda.; expected one of"):
        backend_for("cuda", cpu)
