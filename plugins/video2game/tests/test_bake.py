"""Baking: 8-bit features round-trip through the exported PNGs, the numpy emulation of the exported MLP (what the
browser shader computes) equals the torch forward, the ray caster's barycentric uv, the optimisation."""

import json

import numpy as np
import pytest
import torch
from paperloom_video2game.bake import BakedAppearance, atlas, cast, export, mlp_numpy, quantize_ste, shade_numpy
from reference import bilinear


def trained_like(seed, size=16, spec=3, hidden=32):
    torch.manual_seed(seed)
    m = BakedAppearance(size, spec, hidden)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.7)
    return m


def test_quantize_ste_is_round_forward_and_identity_backward():
    x = torch.rand(1000, requires_grad=True)
    q = quantize_ste(x)
    assert torch.equal(q, torch.round(x.detach() * 255) / 255)
    (q * torch.arange(1000.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(1000.0))


@pytest.mark.parametrize("seed,spec", [(0, 3), (1, 4), (2, 1)])
def test_baked_8bit_features_round_trip_through_the_pngs(tmp_path, seed, spec):
    import trimesh
    from PIL import Image

    m = trained_like(seed, spec=spec)
    quad = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]])
    export(tmp_path, m, quad, np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]), {"quad": np.array([0, 1])})
    d, s = m.textures()
    d_png = np.asarray(Image.open(tmp_path / "diffuse.png")).astype(np.float32) / 255
    s_png = np.asarray(Image.open(tmp_path / "specular.png")).astype(np.float32) / 255
    assert np.array_equal(d_png, d.detach().numpy().astype(np.float32))
    assert np.array_equal(s_png[..., :spec], s.detach().numpy().astype(np.float32))
    assert (tmp_path / "objects" / "quad.obj").is_file() and "vt " in (tmp_path / "scene.obj").read_text()


@pytest.mark.parametrize("seed,spec,hidden", [(0, 3, 32), (1, 2, 16), (2, 4, 32)])
def test_numpy_shader_emulation_equals_the_torch_forward(tmp_path, seed, spec, hidden):
    """From the exported files alone (PNGs + mlp.json), a plain bilinear lookup and the numpy MLP give the torch
    model's colours."""
    import trimesh
    from PIL import Image

    m = trained_like(seed, spec=spec, hidden=hidden)
    quad = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0]], [[0, 1, 2]])
    export(tmp_path, m, quad, np.array([[0, 0], [1, 0], [1, 1.0]]), {})
    g = np.random.default_rng(seed)
    uv = g.uniform(0, 1, (500, 2)).astype(np.float32)
    dirs = g.normal(size=(500, 3)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    with torch.no_grad():
        want = m(torch.from_numpy(uv), torch.from_numpy(dirs)).numpy()
    mlp = json.loads((tmp_path / "mlp.json").read_text())
    assert mlp["format"] == "paperloom-video2game-mlp/1" and len(mlp["layers"]) == 3
    diffuse = np.asarray(Image.open(tmp_path / "diffuse.png")).astype(np.float64) / 255
    spec_tex = np.asarray(Image.open(tmp_path / "specular.png")).astype(np.float64)[..., :spec] / 255
    got = shade_numpy(bilinear(diffuse, uv), bilinear(spec_tex, uv), dirs, mlp)
    assert np.abs(got - want).max() < 5e-5  # float32 vs float64; an 8-bit step is 4e-3
    # and the MLP alone, on arbitrary features
    feats = g.uniform(0, 1, (100, spec)).astype(np.float32)
    with torch.no_grad():
        torch_mlp = m.mlp(torch.cat([torch.from_numpy(feats), torch.from_numpy(dirs[:100])], -1)).numpy()
    assert np.allclose(mlp_numpy(feats, dirs[:100], mlp), torch_mlp, rtol=1e-5, atol=1e-5)


def test_ray_caster_returns_the_barycentric_uv():
    import trimesh

    tri = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    uv = np.array([[0.1, 0.2], [0.9, 0.2], [0.1, 0.8]])
    g = np.random.default_rng(0)
    pts = g.uniform(0, 0.5, (50, 2))
    o = np.c_[pts, np.full(50, 2.0)]
    d = np.tile([0, 0, -1.0], (50, 1))
    o = np.vstack([o, [[5, 5, 2.0]]])  # one miss
    d = np.vstack([d, [[0, 0, -1.0]]])
    ray, tid, huv = cast(tri, uv, o, d)
    assert sorted(ray.tolist()) == list(range(50)) and set(tid.tolist()) == {0}
    order = np.argsort(ray)
    p = pts[ray[order]]
    want = uv[0] + p[:, :1] * (uv[1] - uv[0]) + p[:, 1:] * (uv[2] - uv[0])  # affine on the triangle
    assert np.allclose(huv[order], want, atol=1e-9)


def test_xatlas_atlas_keeps_the_geometry():
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=2)
    split, uv, vmap = atlas(mesh)
    assert len(split.faces) == len(mesh.faces) and uv.shape == (len(split.vertices), 2)
    assert np.allclose(split.vertices, mesh.vertices[vmap]) and uv.min() >= 0 and uv.max() <= 1
    assert np.isclose(split.area, mesh.area)


def test_baking_fits_a_view_dependent_target():
    """A colour that depends on the view direction is learned by the specular MLP (lower loss than diffuse alone)."""
    g = torch.Generator().manual_seed(0)
    uv = torch.rand(4096, 2, generator=g)
    dirs = torch.nn.functional.normalize(torch.randn(4096, 3, generator=g), dim=-1)
    target = (0.3 + 0.4 * uv[:, :1] + 0.25 * dirs[:, 2:3].clamp(min=0)).expand(-1, 3)

    def fit(freeze_mlp):
        torch.manual_seed(0)
        m = BakedAppearance(8, 3, 32)
        params = [m.diffuse_logit, m.specular_logit] + ([] if freeze_mlp else list(m.mlp.parameters()))
        opt = torch.optim.Adam(params, lr=0.03)
        for _ in range(300):
            loss = (m(uv, dirs) - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss)

    assert fit(False) < 0.5 * fit(True)
