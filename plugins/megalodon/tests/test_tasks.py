"""`megalodon:pretrain` as users run it (lm's recipe with Megalodon's defaults and presets), loss by context
length of the saved folder with `lm:evaluate`, and composition with `lm:pretrain`."""

import json

import pytest
from paperloom_lm.pretrain import steps_for_budget

from paperloom import UserError
from paperloom.plugins import registry
from paperloom.runner import execute, resolve_task_config

TINY_DATA = ["data.max_chars=20000", "data.vocab_size=300"]


def test_pretrain_token_budget_resume_export_then_lm_evaluate(tmp_path):
    run = tmp_path / "pre"
    over = [*TINY_DATA, "token_budget=576", "trainer.batch_size=4", "data.block_size=48", "eval_lengths=[16,48]"]
    out, m = execute("megalodon:pretrain", smoke=True, overrides=over, out=run, device="cpu", plot=False)
    assert m["steps"] == steps_for_budget(576, 4, 48) == 3 and m["tokens"] == 3 * 4 * 48
    assert m["val_loss"] < m["init_val_loss"] and "val_loss_ctx16" in m and "val_loss_ctx48" in m
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "model" / "tokenizer.json").is_file()
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "megalodon"
    # a killed run continues from its checkpoint
    _, m2 = execute("megalodon:pretrain", smoke=True, overrides=over, out=run, device="cpu", resume=True, plot=False)
    assert m2["steps"] == 3
    # loss by context length of the exported folder: lm:evaluate (the folder brings its tokenizer)
    _, e = execute("lm:evaluate", smoke=True, overrides=[f"model={out / 'model'}", "context_lengths=[16,48]"],
                   out=tmp_path / "ev", device="cpu", plot=False)
    assert set(e) >= {"val_loss_ctx16", "val_ppl_ctx16", "val_loss_ctx48"} and all(v == v for v in e.values())


def test_lm_pretrain_trains_megalodon(tmp_path):
    _, m = execute("lm:pretrain", smoke=True, overrides=["model=megalodon:tiny", "export=false"],
                   out=tmp_path / "r", device="cpu", plot=False)
    assert m["val_loss"] < m["init_val_loss"]


def test_presets_resolve_to_their_sizes():
    """Presets are layered over configs/pretrain.yaml: tiny switches the model (the defaults' model_args are
    dropped), small restates the sizes the defaults set."""
    reg = registry()

    def cfg(preset):
        return resolve_task_config(reg, "megalodon:pretrain", preset)[3]

    tiny = cfg("tiny")
    assert tiny.model == "megalodon:tiny" and tiny.model_args == {} and tiny.eval_lengths == [16, 48]
    small = cfg("small")
    assert (small.model_args["hidden_size"], small.model_args["chunk_size"], small.data.block_size) == (256, 2048, 8192)
    big = cfg("7b")
    assert big.model == "megalodon:7b" and big.token_budget == 2_000_000_000_000
    assert big.optim.lr == 3.5e-4 and (big.optim.beta1, big.optim.beta2) == (0.9, 0.95)
    assert (big.model_args["num_hidden_layers"], big.model_args["hidden_size"], big.model_args["chunk_size"]) == (
        32, 4096, 4096)


def test_tiny_preset_runs(tmp_path):
    _, m = execute("megalodon:pretrain", config="tiny", out=tmp_path / "t", device="cpu", plot=False)
    assert m["steps"] == 3 and m["params"] < 200_000


def test_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="token_budget"):
        execute("megalodon:pretrain", overrides=["token_budget=lots"], out=tmp_path / "a", plot=False)
    with pytest.raises(UserError, match="no checkpoint folder"):
        execute("lm:evaluate", overrides=[f"model={tmp_path / 'missing'}/"], out=tmp_path / "b", plot=False)
