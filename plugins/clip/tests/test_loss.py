"""The CLIP and SimCLR losses against plain loops, and the gathered (2-process DDP) loss against one process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import reference as ref
import torch
from paperloom_clip.loss import MAX_LOGIT_SCALE, clip_loss, simclr_loss

HERE = Path(__file__).parent


@pytest.mark.parametrize("seed,n,d", [(0, 2, 3), (1, 5, 8), (2, 9, 16), (3, 16, 4)])
def test_clip_loss_equals_plain_symmetric_cross_entropy(seed, n, d):
    g = torch.Generator().manual_seed(seed)
    img, txt = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    scale = float(torch.rand((), generator=g) * MAX_LOGIT_SCALE)
    got = clip_loss(img.double(), txt.double(), torch.tensor(scale, dtype=torch.float64))
    assert float(got) == pytest.approx(ref.clip_loss(img, txt, scale), rel=1e-10)
    local = clip_loss(img.double(), txt.double(), torch.tensor(scale, dtype=torch.float64), local_loss=True)
    assert float(local) == pytest.approx(float(got), rel=1e-12)  # one process: local == global


def test_clip_loss_properties():
    img = torch.eye(4)
    assert float(clip_loss(img, img, torch.tensor(MAX_LOGIT_SCALE))) < 1e-10  # perfect alignment at scale 100
    assert float(clip_loss(img, img, torch.tensor(0.0))) == pytest.approx(  # scale 1: softmax over cos in {0, 1}
        -torch.log(torch.tensor(torch.e / (torch.e + 3))).item(), rel=1e-6)
    perm = torch.randperm(4)
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    s = torch.tensor(2.0)
    assert float(clip_loss(x[perm], y[perm], s)) == pytest.approx(float(clip_loss(x, y, s)), rel=1e-6)


@pytest.mark.parametrize("seed,n,d,tau", [(0, 3, 4, 0.1), (1, 6, 8, 0.5), (2, 10, 16, 0.1)])
def test_simclr_loss_equals_plain_nt_xent(seed, n, d, tau):
    g = torch.Generator().manual_seed(seed)
    za, zb = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    got = simclr_loss(za.double(), zb.double(), tau)
    assert float(got) == pytest.approx(ref.simclr_loss(za, zb, tau), rel=1e-9)


def test_two_process_ddp_equals_one_process_on_the_full_batch(tmp_path):
    """Lightning DDP (2 CPU processes, gloo) with the gathered local loss, and the gathered global loss by hand,
    give the loss and gradients of one process on the whole global batch."""
    from ddp_check import loader, setup
    from paperloom_clip.config import StrategyConfig

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH",
                                                                                                       "")}
    proc = subprocess.run([sys.executable, str(HERE / "ddp_check.py"), str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = torch.load(tmp_path / "ddp.pt", weights_only=True)
    model, data = setup()
    s = StrategyConfig(name="clip", base_crop_min=1.0)
    batch = next(iter(loader(model, data, s, batch_size=8, seed=0)))  # the same 8 pairs, in one process
    loss = clip_loss(model.encode_image(batch["image"]), model.encode_text(batch["input_ids"],
                     batch["attention_mask"]), model.logit_scale)
    loss.backward()
    expected = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert float(got["local_losses"].mean()) == pytest.approx(float(loss.detach()), rel=1e-5)
    assert float(got["full_loss"]) == pytest.approx(float(loss.detach()), rel=1e-5)
    for key in ("local_grads", "full_grads"):
        assert got[key].keys() == expected.keys()
        for n, g in expected.items():
            torch.testing.assert_close(got[key][n], g, rtol=1e-4, atol=1e-6, msg=f"{key} {n}")
