"""The tasks end to end on tiny generated text (CPU): inherit, then pretrain the student on a data budget
(resume, errors); the student component composed by name into lm's recipe."""

from __future__ import annotations

import json

import pytest
import torch

from paperloom import UserError
from paperloom.runner import execute


def test_pretrain_lowers_loss_and_changes_every_parameter(pretrained):
    folder, metrics, watch = pretrained
    assert metrics["val_loss"] < metrics["init_val_loss"] and (folder / "tokenizer.json").is_file()
    (ref, model, before), = watch
    assert ref == "lm:gpt2"
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach().cpu(), before[name].cpu()), f"{name} did not change"


def test_inherit_task_then_pretrain_the_student_on_a_data_budget(reference, corpus, tiny, tmp_path):
    data, steps = tiny
    _, m = execute("inheritune:inherit", out=tmp_path / "inh", device="cpu", plot=False,
                   overrides=[f"reference={reference}", "inherit.k=2"])
    student = tmp_path / "inh" / "student"
    assert m["blocks_copied"] == 2 and m["sliced"] == 1.0 and m["bytes_read"] > 0
    assert (student / "tokenizer.json").is_file() and json.loads((student / "config.json").read_text())["n_layer"] == 2
    _, t = execute("inheritune:pretrain", out=tmp_path / "tr", device="cpu", plot=False, overrides=[
        f"model={student}", f"data.source={corpus}", *data, "data.train_tokens=64", f"trainer={json.dumps(steps)}"])
    assert t["train_tokens"] == 64 and t["steps"] == 4  # 4 blocks of 16 tokens, several epochs
    assert t["val_loss"] < t["init_val_loss"]
    assert t["params"] == m["student_params"]


def test_inherit_task_from_a_component(tmp_path):
    _, m = execute("inheritune:inherit", out=tmp_path / "inh", device="cpu", plot=False, smoke=True,
                   overrides=["inherit.k=1"])
    assert m["blocks_copied"] == 1 and m["student_params"] < m["reference_params"]
    assert json.loads((tmp_path / "inh" / "student" / "inheritune.json").read_text())["reference_blocks"] == [0]


def test_pretrain_token_budget_sets_the_steps(reference, corpus, tiny, tmp_path):
    data, steps = tiny
    _, t = execute("inheritune:pretrain", out=tmp_path / "tb", device="cpu", plot=False, overrides=[
        f"model={reference}", f"data.source={corpus}", *data, f"trainer={json.dumps(steps)}", "token_budget=128",
        "export=false"])
    assert t["steps"] == 2 and t["tokens"] == 128  # 4 blocks x 16 tokens per step


def test_pretrain_resumes_a_killed_run(reference, corpus, tiny, tmp_path):
    data, steps = tiny
    out = tmp_path / "run"
    args = [f"model={reference}", f"data.source={corpus}", *data, f"trainer={json.dumps({**steps, 'max_steps': 2})}"]
    execute("inheritune:pretrain", out=out, device="cpu", plot=False, overrides=args)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    _, m = execute("inheritune:pretrain", out=out, resume=True, device="cpu", plot=False,
                   overrides=["trainer.max_steps=4"])
    assert m["steps"] == 4
    assert "resuming from" in (out / "run.log").read_text()


def test_pretrain_budget_errors(reference, corpus, tiny, tmp_path):
    data, _ = tiny
    with pytest.raises(UserError, match="data.train_tokens = 10000000 exceeds"):
        execute("inheritune:pretrain", out=tmp_path / "b", device="cpu", plot=False,
                overrides=[f"model={reference}", f"data.source={corpus}", *data, "data.train_tokens=10000000"])
    with pytest.raises(UserError, match="no checkpoint folder with config.json"):
        execute("inheritune:pretrain", out=tmp_path / "c", device="cpu", plot=False,
                overrides=[f"model={tmp_path}/nothing"])


def test_student_component_composes_with_lm_pretrain(reference, corpus, tiny, tmp_path):
    """lm's own pre-training task trains an Inheritune student by component name."""
    data, _ = tiny
    _, m = execute("lm:pretrain", out=tmp_path / "c", device="cpu", plot=False, overrides=[
        "model=inheritune:student", f"model_args={{reference: {reference}, k: 1}}", f"data.source={corpus}", *data,
        f"data.tokenizer={reference}", "trainer.max_steps=2", "trainer.batch_size=4", "export=false"])
    assert m["val_loss"] < m["init_val_loss"]
