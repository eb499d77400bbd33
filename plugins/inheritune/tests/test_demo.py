"""The demo's stages: a killed run resumes, skipping finished stages and redoing only the interrupted one."""

from __future__ import annotations

import json

import pytest

from paperloom.runner import execute


def test_demo_resumes_and_skips_finished_stages(corpus, tiny, tmp_path):
    from paperloom_inheritune.demo import curves

    data, steps = tiny
    out = tmp_path / "demo"
    args = [f"data.source={corpus}", *data, "model_args={n_layer: 2, n_embd: 32, n_head: 2, n_positions: 32}",
            "inherit.k=1", "seeds=[0]", f"trainer={json.dumps(steps)}", f"student_trainer={json.dumps(steps)}"]
    _, first = execute("inheritune:demo", out=out, device="cpu", plot=False, overrides=args)
    assert (out / "demo_curves.png").is_file() and (out / "reference" / "tokenizer.json").is_file()
    assert set(curves(out / "metrics.jsonl")) == {"reference", "inherited-s0", "random-s0"}
    assert first["student_params"] < first["reference_params"]
    (out / "stages" / "random-s0" / "result.json").unlink()  # as if killed during the last stage
    _, again = execute("inheritune:demo", out=out, resume=True, device="cpu", plot=False)
    log = (out / "run.log").read_text()
    assert "reference: already finished, skipped" in log and "inherited-s0: already finished, skipped" in log
    assert again["inherited_val_loss_s0"] == first["inherited_val_loss_s0"]
    assert again["random_val_loss_s0"] == pytest.approx(first["random_val_loss_s0"], abs=1e-5)
