"""Safe file helpers, the optimizer schedule and the plain-torch checkpoint helper."""

import io
import math
import tarfile
import zipfile

import pytest
import torch

from paperloom import UserError
from paperloom.io import atomic_write_json, read_json, read_jsonl, safe_extract
from paperloom.optim import warmup_cosine


def test_atomic_json_and_torn_jsonl(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": 1.5})
    assert read_json(tmp_path / "m.json") == {"a": 1.5}
    (tmp_path / "m.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert read_jsonl(tmp_path / "m.jsonl") == [{"step": 1}, {"step": 2}]


def test_safe_extract_rejects_paths_outside_target(tmp_path):
    bad_zip = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UserError, match="outside"):
        safe_extract(bad_zip, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    bad_tar = tmp_path / "bad.tar"
    with tarfile.open(bad_tar, "w") as tf:
        info = tarfile.TarInfo("/abs/evil.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UserError, match="outside"):
        safe_extract(bad_tar, tmp_path / "out2")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("sub/ok.txt", "ok")
    assert (safe_extract(good, tmp_path / "out3") / "sub" / "ok.txt").read_text() == "ok"


def test_warmup_cosine_matches_the_formula():
    lr, min_lr = 1e-3, 1e-4
    assert warmup_cosine(0, 10, 100, lr, min_lr) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, lr, min_lr) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100, lr, min_lr) == pytest.approx(1.0)
    assert warmup_cosine(100, 10, 100, lr, min_lr) * lr == pytest.approx(min_lr)
    mid = 10 + 45
    assert warmup_cosine(mid, 10, 100, lr, min_lr) * lr == pytest.approx(
        min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi / 2))
    )


def test_checkpoint_restores_model_optimizer_scheduler_and_rngs(tmp_path):
    """A loop checkpointed at step 3 and resumed gives bit-identical weights and random draws to an unbroken one."""
    import logging
    import random
    from types import SimpleNamespace

    import numpy as np

    from paperloom.checkpoint import Checkpoint

    def make():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        return model, opt, torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)

    def step(model, opt, sched):
        x = torch.randn(8, 4) + random.random() + float(np.random.rand())
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    ctx = SimpleNamespace(checkpoint_dir=tmp_path, resume=False, log=logging.getLogger("t"))
    model, opt, sched = make()
    random.seed(1), np.random.seed(1)
    ckpt = Checkpoint(ctx)
    for s in range(6):
        step(model, opt, sched)
        if s == 2:
            ckpt.save(3, model, opt, sched, note="x")
    unbroken = model.weight.detach().clone()

    ctx.resume = True
    model2, opt2, sched2 = make()
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # resumed RNGs must not depend on these
    assert ckpt.restore(model2, opt2, sched2) == 3 and ckpt.extra == {"note": "x"}
    for _ in range(3):
        step(model2, opt2, sched2)
    assert torch.equal(model2.weight, unbroken)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert not list(tmp_path.glob("*.tmp"))


def test_a_torn_checkpoint_is_a_one_line_error(tmp_path):
    from paperloom.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.pt", 1, torch.nn.Linear(2, 2))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match=r"c.pt: not a readable checkpoint .*delete it"):
        load_checkpoint(path)


def test_curves_put_every_stage_of_a_metric_on_one_axis_claims_first():
    from paperloom.plots import panels

    rows = [{"step": 2, "dpo/loss": 0.5, "tr-soft/loss": 0.6, "lr": 1e-3}, {"step": 1, "dpo/loss": 0.7},
            {"step": 1, "tr-hard/loss": 0.8, "tr-hard/kl": 0.1, "epoch": 0}, {"note": "no step"}]
    got = panels(rows, first=["dpo_kl", "kl"])
    assert list(got) == ["kl", "loss", "lr", "epoch"]
    assert got["loss"] == {"dpo": [(1, 0.7), (2, 0.5)], "tr-hard": [(1, 0.8)], "tr-soft": [(2, 0.6)]}
