"""Triton kernels (run by the Triton interpreter on CPU, TRITON_INTERPRET=1) == the PyTorch reference path."""

import os
import subprocess
import sys

import pytest
import torch
from paperloom_megalodon.cema import cema_coeffs, cema_fft
from paperloom_megalodon.kernels import HAS_TRITON, backend_for, triton_cema, triton_timestep_norm
from paperloom_megalodon.model import MegalodonForCausalLM, preset_config
from paperloom_megalodon.timestep_norm import timestep_norm_cumulative

pytestmark = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")


def _cema_inputs(seed, bsz, length, dim, ndim):
    g = torch.Generator().manual_seed(seed)
    raw = [torch.randn(dim, ndim, generator=g), torch.randn(dim, ndim, generator=g), torch.randn(dim, generator=g),
           torch.randn(dim, ndim, 2, generator=g)]
    omega = torch.randn(dim, generator=g) * 0.25
    x = torch.randn(bsz, length, dim, generator=g)
    return x, raw, omega


CEMA_CASES = [(0, 2, 24, 8, 4), (1, 1, 40, 5, 16), (2, 3, 9, 33, 3)]
TSN_CASES = [(0, 2, 20, 8, 2, False), (1, 3, 17, 12, 4, True), (2, 1, 9, 10, 5, True)]


def cema_outputs_agree(seed, bsz, length, dim, ndim, device="cpu"):
    x, raw, omega = (t.to(device) if torch.is_tensor(t) else [r.to(device) for r in t]
                     for t in _cema_inputs(seed, bsz, length, dim, ndim))
    p, q, eta = cema_coeffs(*raw)
    y_ref, h_ref = cema_fft(x, p, q, eta, omega)
    y, h = triton_cema(x, p, q, eta, omega)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h, h_ref, rtol=1e-4, atol=1e-4)
    y2, h2 = triton_cema(x, p, q, eta, omega, h_ref)  # carried state
    y2_ref, h2_ref = cema_fft(x, p, q, eta, omega, h_ref)
    torch.testing.assert_close(y2, y2_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h2, h2_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed,bsz,length,dim,ndim", CEMA_CASES)
def test_triton_cema_equals_torch(seed, bsz, length, dim, ndim):
    cema_outputs_agree(seed, bsz, length, dim, ndim)


def test_triton_cema_gradients_equal_torch():
    x, raw, omega = _cema_inputs(3, 2, 16, 6, 4)
    grads = []
    for fn in (cema_fft, triton_cema):
        leaves = [t.clone().requires_grad_() for t in (x, *raw, omega)]
        p, q, eta = cema_coeffs(*leaves[1:5])
        y, _ = fn(leaves[0], p, q, eta, leaves[5])
        y.pow(2).sum().backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def tsn_outputs_agree(seed, bsz, length, dim, groups, masked, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(bsz, length, dim, generator=g) * 2 + 1
    w, b = torch.randn(dim, generator=g) * 0.1, torch.randn(dim, generator=g) * 0.1
    mask = (torch.rand(bsz, length, generator=g) > 0.3).float() if masked else None
    x, w, b = x.to(device), w.to(device), b.to(device)
    mask = None if mask is None else mask.to(device)
    y_ref, s_ref = timestep_norm_cumulative(x, w, b, groups, mask=mask)
    y, s = triton_timestep_norm(x, w, b, groups, mask=mask)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    assert torch.equal(s[0], s_ref[0])
    torch.testing.assert_close(s[1], s_ref[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s[2], s_ref[2], rtol=1e-4, atol=1e-5)
    y2, _ = triton_timestep_norm(x, w, b, groups, s_ref, mask)  # carried state
    y2_ref, _ = timestep_norm_cumulative(x, w, b, groups, s_ref, mask)
    torch.testing.assert_close(y2, y2_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed,bsz,length,dim,groups,masked", TSN_CASES)
def test_triton_timestep_norm_equals_torch(seed, bsz, length, dim, groups, masked):
    tsn_outputs_agree(seed, bsz, length, dim, groups, masked)


def cema_state_gradients_agree(device="cpu"):
    """Two segments with the CEMA state carried from the first into the second; a loss on both outputs and on
    the last state: every gradient (x, raw parameters, omega, the initial state) equals the PyTorch path's."""
    x, raw, omega = _cema_inputs(4, 2, 30, 6, 4)
    g = torch.Generator().manual_seed(5)
    h0 = torch.complex(torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 4, generator=g))
    ry = torch.randn(2, 30, 6, generator=g)
    rr, ri = torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 4, generator=g)
    ry, rr, ri = ry.to(device), rr.to(device), ri.to(device)
    grads = []
    for fn in (cema_fft, triton_cema):
        leaves = [t.clone().to(device).requires_grad_() for t in (x, *raw, omega, h0)]
        p, q, eta = cema_coeffs(*leaves[1:5])
        y1, h1 = fn(leaves[0][:, :13], p, q, eta, leaves[5], leaves[6])
        y2, h2 = fn(leaves[0][:, 13:], p, q, eta, leaves[5], h1)
        loss = (torch.cat([y1, y2], 1) * ry).sum() + (h2.real * rr).sum() + (h2.imag * ri).sum()
        loss.backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def tsn_state_gradients_agree(device="cpu"):
    """Timestep norm over two segments with the statistics carried; loss on outputs and the last mean / var."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 21, 12, generator=g) * 2 + 1
    w, b = torch.randn(12, generator=g) * 0.1, torch.randn(12, generator=g) * 0.1
    mask = (torch.rand(3, 21, generator=g) > 0.3).float()
    mask[:, :2] = 0
    ry, rm, rv = torch.randn(3, 21, 12, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    mask, ry, rm, rv = mask.to(device), ry.to(device), rm.to(device), rv.to(device)
    grads = []
    for fn in (timestep_norm_cumulative, triton_timestep_norm):
        leaves = [t.clone().to(device).requires_grad_() for t in (x, w, b)]
        y1, s1 = fn(leaves[0][:, :9], leaves[1], leaves[2], 4, mask=mask[:, :9])
        y2, (n, mu, var) = fn(leaves[0][:, 9:], leaves[1], leaves[2], 4, s1, mask[:, 9:])
        assert not n.requires_grad and n.dtype == torch.long
        loss = (torch.cat([y1, y2], 1) * ry).sum() + (mu * rm).sum() + (var * rv).sum()
        loss.backward()
        grads.append([t.grad for t in leaves])
    for a, c in zip(*grads):
        torch.testing.assert_close(c, a, rtol=1e-4, atol=1e-4)


def test_triton_cema_gradients_through_the_carried_state():
    """Before: the Triton wrapper marked the state non-differentiable (rel errors 0.18-0.77)."""
    cema_state_gradients_agree()


def test_triton_timestep_norm_gradients_through_the_carried_statistics():
    tsn_state_gradients_agree()


def tsn_count_stays_integer(device="cpu"):
    """A carried count of 2^24 plus 4 valid steps reads 2^24 + 4 (a float32 count would read 2^24)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 8, generator=g).to(device)
    w = b = torch.zeros(8, device=device)
    state = tuple(t.to(device) for t in (torch.tensor([2**24, 3]), torch.randn(2, 2, generator=g),
                                         torch.rand(2, 2, generator=g) + 0.5))
    mask = torch.tensor([[1.0, 1, 1, 1], [1, 0, 1, 0]], device=device)
    y, (n, mu, var) = triton_timestep_norm(x, w, b, 2, state, mask)
    y_ref, (n_ref, mu_ref, var_ref) = timestep_norm_cumulative(x, w, b, 2, state, mask)
    assert n.dtype == torch.long and n.tolist() == [2**24 + 4, 5] and torch.equal(n, n_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mu, mu_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(var, var_ref, rtol=1e-5, atol=1e-6)


def test_triton_timestep_norm_count_stays_integer_past_2_to_24():
    tsn_count_stays_integer()


def model_paths_agree(device="cpu", chunk_size=16, shape=(2, 20)):
    """The whole model with the Triton kernels == with the PyTorch path: logits and every gradient."""
    torch.manual_seed(0)
    ref = MegalodonForCausalLM(preset_config("tiny", vocab_size=30, chunk_size=chunk_size, kernel_backend="torch"))
    tri = MegalodonForCausalLM(preset_config("tiny", vocab_size=30, chunk_size=chunk_size, kernel_backend="triton"))
    tri.load_state_dict(ref.state_dict())
    ref, tri = ref.to(device), tri.to(device)
    ids = torch.randint(0, 30, shape).to(device)
    a, b = ref(ids, labels=ids), tri(ids, labels=ids)
    torch.testing.assert_close(b.logits, a.logits, rtol=1e-4, atol=1e-4)
    a.loss.backward()
    b.loss.backward()
    for (name, pa), pb in zip(ref.named_parameters(), tri.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_model_triton_path_equals_torch_path_and_trains():
    model_paths_agree()


def test_backend_selection(monkeypatch):
    cpu = torch.zeros(1)
    assert backend_for("auto", cpu) == "torch" and backend_for("torch", cpu) == "torch"
    assert backend_for("triton", cpu) == "triton"  # TRITON_INTERPRET=1 in these tests
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        backend_for("triton", cpu)


def all_parity_checks(device):
    """Every parity check of this file on one device (the `gpu` tier runs it on CUDA, compiled kernels)."""
    for case in CEMA_CASES:
        cema_outputs_agree(*case, device=device)
    for case in TSN_CASES:
        tsn_outputs_agree(*case, device=device)
    cema_state_gradients_agree(device)
    tsn_state_gradients_agree(device)
    tsn_count_stays_integer(device)
    model_paths_agree(device, chunk_size=8, shape=(3, 50))


@pytest.mark.gpu
def test_compiled_kernels_on_cuda_equal_torch_path():
    """The real (compiled) Triton kernels on a GPU: a fresh process, since these tests run the interpreter."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r}); from test_kernels import all_parity_checks; "
            "all_parity_checks('cuda'); print('ok')")
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
