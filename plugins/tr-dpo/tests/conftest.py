"""Tiny shared fixtures: a tokenizer trained on the synthetic text, a tiny GPT-2 policy, synthetic pairs."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models: one thread is fastest, and robust on a shared machine


def run_ctx(out: str | Path = ".") -> object:
    """A real run context (what tasks and builders receive), for building components by name."""
    from paperloom.context import Run

    return Run(out=Path(out), plugin="tr-dpo", task="test")


@pytest.fixture(scope="session")
def tok(tmp_path_factory):
    from paperloom_lm.data import train_tokenizer
    from paperloom_tr_dpo import synthetic

    return train_tokenizer(synthetic.corpus(300), 300, tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def pairs():
    from datasets import Dataset
    from paperloom_tr_dpo import synthetic

    return Dataset.from_list(synthetic.synthetic_pairs(48, seed=3))


def tiny_policy(tok, seed: int = 0, n_embd: int = 32, n_layer: int = 1):
    torch.manual_seed(seed)
    return run_ctx().build("lm:gpt2", vocab_size=len(tok), n_layer=n_layer, n_embd=n_embd, n_head=2, n_positions=64)


def tiny_train(steps: int = 3, **kw):
    from paperloom_tr_dpo.config import TrainArgs

    base = dict(steps=steps, batch_size=4, lr=5e-3, max_length=48, save_steps=10**6, log_steps=1)
    base.update(kw)
    return TrainArgs(**base)
