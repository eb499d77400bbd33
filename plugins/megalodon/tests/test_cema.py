"""CEMA fidelity: FFT convolution == the sequential CEMA recurrence; streaming == whole; |q| <= 1."""


import pytest
import torch
from paperloom_megalodon.cema import ComplexEMA, cema_coeffs, cema_fft, cema_kernel, cema_sequential, init_cema_
from reference import naive_cema


def _params(dim, ndim, seed, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    alpha = torch.randn(dim, ndim, generator=g, dtype=dtype) * scale
    delta = torch.randn(dim, ndim, generator=g, dtype=dtype) * scale
    theta = torch.randn(dim, generator=g, dtype=dtype) * scale
    eta = torch.randn(dim, ndim, 2, generator=g, dtype=dtype)
    omega = torch.randn(dim, generator=g, dtype=dtype) * 0.25
    return alpha, delta, theta, eta, omega


@pytest.mark.parametrize("seed,bsz,length,dim,ndim", [(0, 2, 17, 3, 4), (1, 1, 64, 4, 16), (2, 3, 5, 2, 2)])
def test_fft_equals_naive_loops(seed, bsz, length, dim, ndim):
    alpha, delta, theta, eta, omega = _params(dim, ndim, seed)
    x = torch.randn(bsz, length, dim, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64)
    p, q, e = cema_coeffs(alpha, delta, theta, eta)
    y, h = cema_fft(x, p, q, e, omega)
    y_ref, h_ref = naive_cema(x, alpha, delta, theta, eta, omega)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed,bsz,length,dim,ndim", [(0, 2, 100, 8, 16), (1, 1, 257, 5, 8), (2, 4, 33, 16, 4),
                                                     (3, 2, 512, 3, 16)])
def test_fft_equals_sequential_recurrence(seed, bsz, length, dim, ndim):
    alpha, delta, theta, eta, omega = _params(dim, ndim, seed)
    x = torch.randn(bsz, length, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    p, q, e = cema_coeffs(alpha, delta, theta, eta)
    y_fft, h_fft = cema_fft(x, p, q, e, omega)
    y_seq, h_seq = cema_sequential(x, p, q, e, omega)
    torch.testing.assert_close(y_fft, y_seq, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_fft, h_seq, rtol=1e-5, atol=1e-5)
    # the float32 production path agrees to float32 precision
    p32, q32, e32 = cema_coeffs(alpha.float(), delta.float(), theta.float(), eta.float())
    y32, _ = cema_fft(x.float(), p32, q32, e32, omega.float())
    torch.testing.assert_close(y32.double(), y_seq, rtol=1e-4, atol=2e-4)


def test_kernel_is_the_impulse_response():
    alpha, delta, theta, eta, omega = _params(3, 4, 7)
    p, q, e = cema_coeffs(alpha, delta, theta, eta)
    impulse = torch.zeros(1, 20, 3, dtype=torch.float64)
    impulse[:, 0] = 1
    y, _ = cema_sequential(impulse, p, q, e, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(y[0].T, cema_kernel(p, q, e, 20))


@pytest.mark.parametrize("seed,length,split", [(0, 64, 32), (1, 50, 13), (2, 31, 1), (3, 40, 39)])
def test_two_halves_with_carried_state_equal_whole(seed, length, split):
    alpha, delta, theta, eta, omega = _params(6, 8, seed)
    x = torch.randn(2, length, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    p, q, e = cema_coeffs(alpha, delta, theta, eta)
    y, h = cema_fft(x, p, q, e, omega)
    y1, h1 = cema_fft(x[:, :split], p, q, e, omega)
    y2, h2 = cema_fft(x[:, split:], p, q, e, omega, h0=h1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h2, h, rtol=1e-6, atol=1e-6)
    # and the module's streaming path (float32) agrees with its whole-sequence path
    module = ComplexEMA(6, 8, backend="torch")
    from transformers import initialization as init

    torch.manual_seed(seed)
    init_cema_(module, init)
    xf = x.float()
    whole, _ = module(xf)
    a, ha = module(xf[:, :split], need_state=True)
    b, _ = module(xf[:, split:], ha)
    torch.testing.assert_close(torch.cat([a, b], 1), whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 10.0), (2, 100.0)])
def test_q_inside_unit_disk(seed, scale):
    alpha, delta, theta, eta, _ = _params(32, 16, seed, dtype=torch.float32, scale=scale)
    p, q, _ = cema_coeffs(alpha, delta, theta, eta)
    assert bool((q.abs() <= 1.0).all())
    assert bool(((p >= 0) & (p <= 1)).all())


def test_initialisation_follows_official_code():
    from transformers import initialization as init

    torch.manual_seed(0)
    m = ComplexEMA(256, 16)
    init_cema_(m, init)
    m.requires_grad_(False)
    assert abs(float(m.alpha.std()) - 0.2) < 0.02 and abs(float(m.delta.std()) - 0.2) < 0.02
    assert float(m.eta[..., 1].abs().max()) == 0.0 and abs(float(m.eta[..., 0].std()) - 1) < 0.05
    assert float(m.omega.abs().max()) <= 1.0
    assert m.theta.shape == (256,)
    y, _ = m(torch.randn(1, 8, 256))
    assert torch.isfinite(y).all()
