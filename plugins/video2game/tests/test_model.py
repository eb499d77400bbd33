"""The field's parts against plain references: contraction, hash encoding (values and gradients), SH basis."""

import numpy as np
import pytest
import torch
from paperloom_video2game.config import NeRFConfig
from paperloom_video2game.model import HashEncoding, NeRFField, contract, spherical_harmonics, uncontract
from reference import contract_point, hash_encode


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contract_matches_reference_and_round_trips(seed):
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(500, 1, generator=g, dtype=torch.float64) * 20
    x = torch.randn(500, 3, generator=g, dtype=torch.float64) * scale
    y = contract(x)
    ref = np.stack([contract_point(p) for p in x.numpy()])
    assert np.allclose(y.numpy(), ref, atol=1e-12)
    assert float(y.abs().max()) < 2
    inside = x.abs().amax(-1) <= 1
    assert torch.equal(y[inside], x[inside])  # identity in the unit cube
    assert torch.allclose(uncontract(y), x, rtol=1e-9, atol=1e-9)


def test_contract_is_continuous_at_the_unit_cube():
    x = torch.tensor([[1.0, 0.3, -0.2]], dtype=torch.float64)
    eps = 1e-7
    assert torch.allclose(contract(x * (1 + eps)), contract(x), atol=1e-6)


@pytest.mark.parametrize("levels,features,log2_table,base,top,seed", [
    (4, 2, 10, 4, 64, 0),   # coarse levels dense, fine ones hashed
    (6, 3, 12, 8, 256, 1),
    (1, 2, 14, 16, 16, 2),  # a single dense level
    (3, 1, 6, 16, 128, 3),  # every level hashed (T = 64)
])
def test_hash_encoding_equals_the_per_level_reference(levels, features, log2_table, base, top, seed):
    torch.manual_seed(seed)
    enc = HashEncoding(levels, features, log2_table, base, top).double()
    with torch.no_grad():
        enc.embeddings.normal_()  # non-trivial tables
    u = torch.rand(300, 3, dtype=torch.float64)
    u[:5] = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0.5], [0.5, 1, 0], [0.999999, 0.0, 1.0]], dtype=torch.float64)
    u.requires_grad_(True)
    table = enc.embeddings.detach().clone().requires_grad_(True)
    got = enc(u)
    ref = hash_encode(u, table, levels, features, log2_table, base, top)
    assert got.shape == (300, levels * features)
    assert torch.allclose(got, ref, atol=1e-12)
    gw = torch.randn_like(got)
    g_tab, g_u = torch.autograd.grad((got * gw).sum(), [enc.embeddings, u])
    r_tab, r_u = torch.autograd.grad((ref * gw).sum(), [table, u])
    assert torch.allclose(g_tab, r_tab, atol=1e-10)
    assert torch.allclose(g_u, r_u, atol=1e-9)


def test_hash_encoding_level_sizes_follow_the_growth_factor():
    enc = HashEncoding(16, 2, 19, 16, 2048)
    b = np.exp((np.log(2048) - np.log(16)) / 15)
    assert enc.res.tolist() == [int(np.floor(16 * b**k)) for k in range(16)]
    assert int(enc.sizes.max()) == 2**19 and bool(enc.dense[0]) and not bool(enc.dense[-1])


def test_spherical_harmonics_are_orthonormal():
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=g, dtype=torch.float64), dim=-1)
    y = spherical_harmonics(d, 4)
    gram = (y.T @ y) / len(d) * 4 * np.pi  # Monte Carlo of the integral over the sphere
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.02)


def test_field_outputs_and_gradients():
    field = NeRFField(NeRFConfig(levels=4, log2_table=10, max_res=64, hidden=16, grid_res=16))
    y = torch.rand(64, 3) * 4 - 2
    d = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    sigma, rgb = field(y, d)
    assert sigma.shape == (64,) and rgb.shape == (64, 3) and bool((sigma > 0).all())
    assert bool(((rgb > 0) & (rgb < 1)).all())
    (sigma.sum() + rgb.sum()).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in field.parameters())
