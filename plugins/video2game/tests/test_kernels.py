"""The Triton hash-encoding kernels (Triton interpreter on CPU, TRITON_INTERPRET=1) == the torch path: features,
gradients into the table (the Triton transpose kernel) and into the points (the torch recompute)."""

import pytest
import torch
from paperloom_video2game.kernels import HAS_TRITON
from paperloom_video2game.model import HashEncoding

pytestmark = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")


@pytest.mark.parametrize("levels,features,log2_table,base,top,seed", [
    (4, 2, 10, 4, 64, 0),   # coarse levels dense, fine ones hashed
    (3, 4, 8, 8, 128, 1),   # F = 4, mostly hashed
    (2, 1, 14, 16, 32, 2),  # dense only, F = 1
])
def test_triton_hash_encoding_equals_the_torch_path(levels, features, log2_table, base, top, seed):
    torch.manual_seed(seed)
    enc = HashEncoding(levels, features, log2_table, base, top, backend="triton")
    with torch.no_grad():
        enc.embeddings.normal_()
    u = torch.rand(150, 3)
    u[:4] = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0.5], [0.999999, 0.0, 1.0]])  # cube faces and corners
    gw = torch.randn(150, levels * features)
    got = enc(u)
    want = enc.torch_forward(u, enc.embeddings)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    g_kernel, = torch.autograd.grad((got * gw).sum(), [enc.embeddings])  # the atomic-add transpose kernel
    g_torch, = torch.autograd.grad((want * gw).sum(), [enc.embeddings])
    torch.testing.assert_close(g_kernel, g_torch, atol=1e-5, rtol=1e-5)
    assert g_torch.abs().sum() > 0
    v = u.clone().requires_grad_(True)  # points with a gradient: the torch recompute in backward
    g_tab, g_v = torch.autograd.grad((enc(v) * gw).sum(), [enc.embeddings, v])
    r_tab, r_v = torch.autograd.grad((enc.torch_forward(v, enc.embeddings) * gw).sum(), [enc.embeddings, v])
    torch.testing.assert_close(g_tab, r_tab, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_v, r_v, atol=1e-4, rtol=1e-4)


def test_auto_uses_torch_on_cpu_and_a_bad_backend_names_the_option():
    enc = HashEncoding(2, 2, 8, 4, 16)
    assert enc.backend == "auto"
    enc(torch.rand(5, 3))  # auto on CPU: the torch path, no interpreter needed
    enc.backend = "gpu"
    with pytest.raises(ValueError, match="hash_backend='gpu'; expected one of"):
        enc(torch.rand(5, 3))
