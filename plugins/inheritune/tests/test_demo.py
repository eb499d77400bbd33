"""The demo: every arm trains with its own recipe (scratch_full on the full data with the reference's budget,
the subset arms on the subset for the students' steps), the statistics, and resuming a killed run, skipping
finished stages and redoing only the interrupted one."""

from __future__ import annotations

import json

import pytest

from paperloom import UserError
from paperloom.runner import execute


def test_stage_names():
    from paperloom_inheritune.demo import arm_of, stage_name

    assert stage_name("scratch_full", 12) == "scratch-full-s12" and arm_of("scratch-full-s12") == "scratch_full"
    assert arm_of("reference") == "reference" and arm_of("reference-continued-s0") == "reference_continued"


def test_demo_arms_budgets_and_resume(corpus, tiny, tmp_path):
    from paperloom_inheritune.demo import curves

    data, steps = tiny
    out = tmp_path / "demo"
    student_steps = {**steps, "max_steps": 2, "val_every": 1}
    args = [f"data.source={corpus}", *data, "model_args={n_layer: 2, n_embd: 32, n_head: 2, n_positions: 32}",
            "inherit.k=1", "seeds=[0]",
            "arms=[inherited, scratch_full, scratch_subset, reference_continued]", f"trainer={json.dumps(steps)}",
            f"student_trainer={json.dumps(student_steps)}"]
    _, first = execute("inheritune:demo", out=out, device="cpu", plot=False, overrides=args)
    assert (out / "demo_curves.png").is_file() and (out / "reference" / "tokenizer.json").is_file()
    assert set(curves(out / "metrics.jsonl")) == {"reference", "inherited-s0", "scratch-full-s0", "scratch-subset-s0",
                                                  "reference-continued-s0"}
    assert first["student_params"] < first["reference_params"]
    # scratch_full: the reference's token budget on the full data; the subset arms: the students' steps
    assert first["scratch_full_steps"] == first["reference_steps"] == 4
    assert first["scratch_full_tokens"] == first["reference_tokens"]
    assert first["inherited_steps"] == first["scratch_subset_steps"] == first["reference_continued_steps"] == 2
    assert first["subset_tokens"] < first["full_tokens"]
    # one seed: SE 0, the bounds are the mean; the reference continued starts where the reference ended
    assert first["inherited_val_loss_se"] == 0 and first["inherited_val_loss_upper"] == first["inherited_val_loss_mean"]
    assert first["reference_continued_init_val_loss_s0"] == pytest.approx(first["reference_val_loss"], abs=1e-5)
    diff = first["scratch_full_val_loss_mean"] - first["inherited_val_loss_mean"]
    assert first["scratch_full_minus_inherited_mean"] == pytest.approx(diff)
    assert first["scratch_full_minus_inherited_lower"] == pytest.approx(diff)  # SE 0 with one seed
    assert first["reference_val_loss_plus_tolerance"] == pytest.approx(first["reference_val_loss"] + 0.02)
    (out / "stages" / "scratch-subset-s0" / "result.json").unlink()  # as if killed during that stage
    _, again = execute("inheritune:demo", out=out, resume=True, device="cpu", plot=False)
    log = (out / "run.log").read_text()
    assert "reference: already finished, skipped" in log and "inherited-s0: already finished, skipped" in log
    assert "reference-continued-s0: already finished, skipped" in log
    assert again["inherited_val_loss_s0"] == first["inherited_val_loss_s0"]
    assert again["scratch_subset_val_loss_s0"] == pytest.approx(first["scratch_subset_val_loss_s0"], abs=1e-5)


def test_demo_rejects_unknown_arms(tmp_path):
    with pytest.raises(UserError, match="arms"):
        execute("inheritune:demo", out=tmp_path / "bad", device="cpu", plot=False, smoke=True,
                overrides=["arms=[inherited, distilled]"])
