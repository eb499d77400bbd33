"""The plugin as users run it: conformance, composition with core tasks, pretrain / resume / evaluate, configs."""

from pathlib import Path

import pytest
import torch

from paperloom.config import load_yaml
from paperloom.errors import UserError
from paperloom.run import execute, load_ref
from paperloom.testing import assert_conforms

CONFIGS = Path(load_ref("paperloom_megalodon.plugin:__file__")).parent / "configs"
TINY_DATA = ["data.max_chars=20000", "data.vocab_size=300"]


def test_conforms():
    assert_conforms("megalodon")


def test_core_train_lm_composes_with_megalodon(tmp_path):
    out, metrics = execute("core:train-lm", smoke=True, overrides=["model=megalodon:tiny"],
                           out=tmp_path / "r", device="cpu", plot=False)
    assert metrics["val_loss"] < metrics["init_val_loss"]
    assert (out / "model" / "config.json").is_file()


def test_pretrain_token_budget_resume_export_then_evaluate(tmp_path):
    run = tmp_path / "pre"
    over = [*TINY_DATA, "token_budget=576", "trainer.batch_size=4", "data.block_size=48", "eval_lengths=[16,48]"]
    out, m = execute("megalodon:pretrain", smoke=True, overrides=over, out=run, device="cpu", plot=False)
    assert m["steps"] == 3 and m["tokens"] == 3 * 4 * 48  # 576 tokens / (4 x 48) per step
    assert m["val_loss"] < m["init_val_loss"] and "val_loss_ctx16" in m and "val_loss_ctx48" in m
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "model" / "tokenizer.json").is_file()
    # a killed run continues from its checkpoint
    out2, m2 = execute("megalodon:pretrain", smoke=True, overrides=over, out=run, device="cpu", resume=True, plot=False)
    assert m2["steps"] == 3
    # evaluate the exported HF folder by context length (tokenizer comes from the folder)
    _, e = execute("megalodon:evaluate", smoke=True, overrides=[f"model={out / 'model'}"], out=tmp_path / "ev",
                   device="cpu", plot=False)
    assert set(e) >= {"val_loss_ctx16", "val_ppl_ctx32"} and all(v == v for v in e.values())


@pytest.mark.parametrize("name", ["pretrain", "tiny", "small", "paper_7b"])
def test_shipped_pretrain_configs_validate(name):
    from paperloom_megalodon.config import PretrainConfig

    from paperloom.config import build

    cfg = build(PretrainConfig, load_yaml(CONFIGS / f"{name}.yaml"), f"{name}.yaml")
    if name == "paper_7b":
        assert cfg.optim.lr == 3.5e-4 and (cfg.optim.beta1, cfg.optim.beta2) == (0.9, 0.95)
        assert cfg.model_args["num_hidden_layers"] == 32 and cfg.model_args["hidden_size"] == 4096
        assert cfg.model_args["chunk_size"] == 4096


def test_tiny_config_runs(tmp_path):
    _, m = execute("megalodon:pretrain", config_file=str(CONFIGS / "tiny.yaml"), out=tmp_path / "t", device="cpu",
                   plot=False)
    assert m["steps"] == 3


def test_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="token_budget"):
        execute("megalodon:pretrain", overrides=["token_budget=lots"], out=tmp_path / "a", plot=False)
    with pytest.raises(UserError, match="no checkpoint folder"):
        execute("megalodon:evaluate", overrides=[f"model={tmp_path / 'missing'}/"], out=tmp_path / "b", plot=False)
    with pytest.raises(UserError, match="n_chunks"):
        execute("megalodon:demo", smoke=True, overrides=["n_chunks=3"], out=tmp_path / "c", device="cpu", plot=False)


def test_recall_task_data():
    from paperloom_megalodon.data import MARK, QUERY, recall_batch

    b = recall_batch(64, 5, 8, 8, torch.Generator().manual_seed(0))
    ids = b["input_ids"]
    assert ids.shape == (64, 40) and bool((ids[:, -2] == QUERY).all())
    marks = (ids == MARK).nonzero()
    assert len(marks) == 64 and bool(((marks[:, 1] + 1) % 8 == 0).all()) and bool((marks[:, 1] >= 15).all())
    assert bool((ids[marks[:, 0], marks[:, 1] + 1] == b["answer"]).all())
    assert bool((b["labels"][:, :-1] == -100).all()) and torch.equal(b["labels"][:, -1], b["answer"])
    # every value equally often in every sequence: the bag of tokens says nothing about the answer
    counts = torch.stack([torch.bincount(row[:-2], minlength=12)[4:] for row in ids])
    assert bool((counts == counts[0, 0]).all())
