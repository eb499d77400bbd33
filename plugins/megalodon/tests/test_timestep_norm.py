"""Timestep norm fidelity: parallel (cumulative) == naive §3.2 update loop == direct cumulative mean/var; streaming."""

import pytest
import torch
from paperloom_megalodon.timestep_norm import TimestepNorm, timestep_norm_cumulative
from reference import timestep_norm_naive


def _inputs(seed, bsz, length, dim, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(bsz, length, dim, generator=g, dtype=dtype) * 2 + 0.5
    w = torch.randn(dim, generator=g, dtype=dtype) * 0.1
    b = torch.randn(dim, generator=g, dtype=dtype) * 0.1
    return x, w, b


@pytest.mark.parametrize("seed,bsz,length,dim,groups", [(0, 2, 30, 8, 2), (1, 3, 64, 16, 4), (2, 1, 7, 6, 3),
                                                         (3, 2, 100, 32, 32)])
def test_cumulative_equals_naive_and_direct_statistics(seed, bsz, length, dim, groups):
    x, w, b = _inputs(seed, bsz, length, dim)
    y, (n, mu, var) = timestep_norm_cumulative(x, w, b, groups)
    y_ref, (n_ref, mu_ref, var_ref) = timestep_norm_naive(x, w, b, groups)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mu, mu_ref)
    torch.testing.assert_close(var, var_ref)
    assert torch.equal(n, n_ref) and int(n[0]) == length
    # direct definition: mean / population variance of every feature of the group over steps 0..t
    xg = x.view(bsz, length, groups, dim // groups)
    for t in (0, length // 2, length - 1):
        seen = xg[:, : t + 1].transpose(1, 2).reshape(bsz, groups, -1)
        m, v = seen.mean(-1), seen.var(-1, unbiased=False)
        expect = ((xg[:, t] - m.unsqueeze(-1)) / torch.sqrt(v.unsqueeze(-1) + 1e-5)).reshape(bsz, dim) * (1 + w) + b
        torch.testing.assert_close(y[:, t], expect, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed,splits", [(0, [10, 20]), (1, [1, 2, 5]), (2, [33])])
def test_streaming_equals_full(seed, splits):
    x, w, b = _inputs(seed, 2, 50, 12)
    full, state_full = timestep_norm_cumulative(x, w, b, 3)
    parts, state, start = [], None, 0
    for end in [*splits, 50]:
        y, state = timestep_norm_cumulative(x[:, start:end], w, b, 3, state)
        parts.append(y)
        start = end
    torch.testing.assert_close(torch.cat(parts, 1), full)
    for a, c in zip(state, state_full):
        torch.testing.assert_close(a, c)
    # the naive loop streams the same way
    y1, s1 = timestep_norm_naive(x[:, :splits[0]], w, b, 3)
    y2, _ = timestep_norm_naive(x[:, splits[0]:], w, b, 3, s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), full, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padded_steps_output_zero_and_keep_state(seed):
    x, w, b = _inputs(seed, 3, 20, 8)
    mask = (torch.rand(3, 20, generator=torch.Generator().manual_seed(seed)) > 0.3).double()
    mask[:, :3] = 0  # left padding
    mask[2] = 0  # a fully padded row
    y, (n, mu, var) = timestep_norm_cumulative(x, w, b, 2, mask=mask)
    y_ref, (n_ref, mu_ref, var_ref) = timestep_norm_naive(x, w, b, 2, mask=mask)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    assert bool((y[mask == 0] == 0).all())
    assert torch.equal(n, mask.sum(1).long()) and torch.equal(n, n_ref)
    torch.testing.assert_close(mu, mu_ref)
    torch.testing.assert_close(var, var_ref)
    assert float(mu[2].abs().max()) == 0 and float((var[2] - 1).abs().max()) == 0  # untouched default state
    # dropping the padded steps gives the same outputs on the valid ones
    row = mask[0].bool()
    y_valid, _ = timestep_norm_cumulative(x[:1, row], w, b, 2)
    torch.testing.assert_close(y[0, row], y_valid[0])


def test_float32_module_matches_reference_and_backprops():
    x, _, _ = _inputs(0, 2, 40, 16, dtype=torch.float32)
    norm = TimestepNorm(16, 4, backend="torch")
    y, _ = norm(x * 30 + 100)  # large offset: the shifted cumulative sums stay accurate
    y_ref, _ = timestep_norm_naive((x * 30 + 100).double(), norm.weight.double(), norm.bias.double(), 4)
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-3, atol=1e-3)
    y.square().mean().backward()
    assert norm.weight.grad is not None and torch.isfinite(norm.weight.grad).all()


@pytest.mark.parametrize("offset", [10.0, 100.0, 1000.0])
def test_float32_large_padded_values_are_excluded_from_every_statistic(offset):
    """Padded steps (left padding and holes) holding +offset: float32 == float64 reference to 2e-6.

    Before: the cumulative-sum origin came from step 0 even when padded, errors 3e-5 / 4e-3 / 69."""
    x, w, b = _inputs(0, 2, 64, 16)
    mask = (torch.rand(2, 64, generator=torch.Generator().manual_seed(1)) > 0.3).double()
    mask[:, :4] = 0
    xp = torch.where(mask.bool().unsqueeze(-1), x, x + offset).float()
    y, (n, mu, var) = timestep_norm_cumulative(xp, w.float(), b.float(), 4, mask=mask.float())
    y_ref, (n_ref, mu_ref, var_ref) = timestep_norm_naive(xp.double(), w.float().double(), b.float().double(), 4,
                                                          mask=mask)
    assert float((y.double() - y_ref).abs().max()) < 2e-6
    assert torch.equal(n, n_ref)
    torch.testing.assert_close(mu.double(), mu_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var.double(), var_ref, rtol=1e-6, atol=1e-6)
    # non-finite padded values cannot leak either
    y_inf, _ = timestep_norm_cumulative(torch.where(mask.bool().unsqueeze(-1), xp, torch.inf), w.float(), b.float(),
                                        4, mask=mask.float())
    torch.testing.assert_close(y_inf, y, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["jump", "walk"])
def test_float32_long_drifting_input_matches_float64_reference(kind):
    """8192 steps whose level moves far from the origin: the variance stays accurate (float64 accumulators).

    Before (float32 E[x^2] - E[x]^2): 'jump' final variance rel error 6e-5; now 5e-8."""
    g = torch.Generator().manual_seed(0)
    length = 8192
    noise = torch.randn(1, length, 16, generator=g, dtype=torch.float64)
    if kind == "jump":  # step 0..7 near 0, then at 1000
        level = torch.where(torch.arange(length) >= 8, 1000.0, 0.0).double()
    else:  # a random walk of the level
        level = torch.randn(length, generator=g, dtype=torch.float64).cumsum(0) * 10
    x = (noise + level[None, :, None]).float()
    zero = torch.zeros(16)
    y, (_, mu, var) = timestep_norm_cumulative(x, zero, zero, 4)
    y_ref, (_, mu_ref, var_ref) = timestep_norm_naive(x.double(), zero.double(), zero.double(), 4)
    assert float((y.double() - y_ref).abs().max()) < 5e-6
    assert float(((var.double() - var_ref).abs() / var_ref).max()) < 1e-6
    torch.testing.assert_close(mu.double(), mu_ref, rtol=1e-6, atol=1e-6)
