"""`fam:demo` beyond the kit's smoke run: both methods are fam:wrap around cfg.base, BSWA without a prompt."""

import pytest
from paperloom_fam.demo import beyond_field, receptive_field

from paperloom import UserError
from paperloom.runner import execute


def test_demo_builds_bswa_and_fam_from_the_same_base(tmp_path):
    watch = []
    out, m = execute("fam:demo", smoke=True, out=tmp_path / "d", device="cpu", plot=False, watch=watch)
    wrapped = [model for ref, model, _ in watch if ref == "fam:wrap"]
    assert [w.config.fam_len for w in wrapped] == [0, 4]
    assert wrapped[0].fam_prompt is None and wrapped[1].fam_prompt is not None
    assert {"fam_acc_beyond", "bswa_acc_beyond", "gap_beyond_lower", "chance_plus_margin"} <= set(m)
    assert (out / "passkey.png").is_file()


def test_receptive_field():
    assert receptive_field(2, 1, 8) == 24
    assert not beyond_field(16, 2, 1, 8) and not beyond_field(24, 2, 1, 8) and beyond_field(32, 2, 1, 8)


def test_no_length_beyond_the_field_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="beyond BSWA's receptive field"):
        execute("fam:demo", smoke=True, overrides=["eval_lengths=[16]"], out=tmp_path / "c", device="cpu")


def test_resume_restores_each_stage_from_its_checkpoint(tmp_path, monkeypatch):
    import paperloom_fam.demo as demo

    calls = []
    real = demo.passkey_batch
    monkeypatch.setattr(demo, "passkey_batch", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    _, first = execute("fam:demo", smoke=True, out=tmp_path / "r", device="cpu", plot=False)
    assert len(calls) == 2 + 2 * 3  # the held-out sets of the 2 eval lengths + 3 training batches per method
    ckpts = sorted(p.parent.parent.name for p in (tmp_path / "r" / "stages").glob("*/checkpoints/last.pt"))
    assert ckpts == ["bswa_seed0", "fam_seed0"]
    calls.clear()
    _, again = execute("fam:demo", smoke=True, out=tmp_path / "r", device="cpu", plot=False, resume=True)
    assert len(calls) == 2  # both stages restored at their last step: no batch trained again
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in first.items() if k != "seconds"}
