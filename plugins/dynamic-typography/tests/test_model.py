"""The fields: a zero motion field gives frames equal to the base, the global affine's composition, the
annealed encoding, gradients reach every parameter."""

import math

import pytest
import torch
from paperloom_dynamic_typography.model import FieldsConfig, FrequencyEncoding, TypographyFields
from reference import affine


def glyph(n=30, seed=0):
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) * 64


def small(**kw):
    return FieldsConfig(n_points=30, n_frames=5, inter_dim=16, embed_dim=8, **kw)


@pytest.mark.parametrize("seed", [0, 1])
def test_zero_motion_field_gives_frames_equal_to_the_base(seed):
    torch.manual_seed(seed)
    model = TypographyFields(small(), zero_init=False)
    m = model.motion_field
    for head in (m.local, m.translation, m.rotation, m.shear, m.scale_head):  # zero local + identity affine
        torch.nn.init.zeros_(head[-1].weight)
        torch.nn.init.zeros_(head[-1].bias)
    base, frames = model(glyph(seed=seed), step=400)
    assert not torch.allclose(base, glyph(seed=seed))  # the base field is random here, the motion is zero
    assert torch.allclose(frames, base[None].expand_as(frames), atol=1e-5)


def test_untrained_model_is_the_glyph():
    base, frames = TypographyFields(small())(glyph())
    assert torch.equal(base, glyph()) and torch.allclose(frames, glyph()[None].expand_as(frames), atol=1e-5)


def test_global_affine_is_rotation_shear_scale():
    torch.manual_seed(0)
    model = TypographyFields(small(), zero_init=False)
    m = model.motion_field
    h = torch.randn(1, 16)
    torch.set_grad_enabled(False)
    mats, tr = m.global_affine(h)
    c = m.cfg
    theta = m.rotation(h).reshape(5) * c.rotation_weight
    sh = m.shear(h).reshape(5, 2) * c.shear_weight
    sc = 1 + m.scale_head(h).reshape(5, 2) * c.scale_weight
    for f in range(5):
        ref = affine(float(theta[f]), float(sh[f, 0]), float(sh[f, 1]), float(sc[f, 0]), float(sc[f, 1]))
        assert torch.allclose(mats[f], torch.tensor(ref), atol=1e-6)
    assert torch.allclose(tr, m.translation(h).reshape(5, 2) * 2.0)  # translation weight 2 (reference)
    torch.set_grad_enabled(True)


def test_global_motion_is_that_affine_about_the_base_center():
    torch.manual_seed(1)
    model = TypographyFields(small(), zero_init=False)
    torch.nn.init.zeros_(model.motion_field.local[-1].weight)
    torch.nn.init.zeros_(model.motion_field.local[-1].bias)
    g = glyph()
    base, frames = model(g)
    c = base.mean(0)
    m = model.motion_field
    xyt_h = None  # recompute the affine from the model's own shared features

    def hook(_, __, out):
        nonlocal xyt_h
        xyt_h = out

    handle = m.shared.register_forward_hook(hook)
    model(g)
    handle.remove()
    mats, tr = m.global_affine(xyt_h)
    expect = torch.einsum("fij,nj->fni", mats, base - c) + tr[:, None] + c
    assert torch.allclose(frames, expect, atol=1e-4)


def test_frequency_annealing_opens_bands_coarse_to_fine():
    enc = FrequencyEncoding(6, anneal=True, begin=250, steps=500)
    assert torch.equal(enc.band_weights(0), torch.zeros(6)) and torch.equal(enc.band_weights(250), torch.zeros(6))
    assert torch.allclose(enc.band_weights(750), torch.ones(6))
    w = enc.band_weights(250 + 500 * 2.5 / 6)  # alpha = 2.5: bands 0, 1 open, band 2 half, the rest closed
    assert torch.allclose(w, torch.tensor([1, 1, 0.5, 0, 0, 0]), atol=1e-6)
    x = torch.rand(4, 3)
    out = enc(x, 0)
    assert torch.equal(out[:, :3], x) and torch.equal(out[:, 3:], torch.zeros(4, 36))
    full = FrequencyEncoding(6)(x)
    assert torch.allclose(full[:, 3:6], torch.sin(x * 1.0)) and math.isclose(float(FrequencyEncoding(6).freqs[-1]), 512)


def test_every_parameter_gets_a_gradient_after_one_step():
    model = TypographyFields(small())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    target = glyph(seed=5)
    for _ in range(2):
        base, frames = model(glyph(), step=10)
        loss = ((frames - target) ** 2).mean() + ((base - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    base, frames = model(glyph(), step=10)
    ((frames - target) ** 2).mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert not dead, dead
