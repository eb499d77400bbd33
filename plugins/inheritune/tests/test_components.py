"""The `inheritune:student` builder: the inherited student, the random-init baseline, seeds and errors."""

from __future__ import annotations

import pytest
import torch

from paperloom import UserError
from paperloom.context import Run


@pytest.fixture
def ctx(tmp_path):
    return Run(out=tmp_path, plugin="inheritune", task="test", seed=3)


def test_student_inherits_and_random_init_does_not(saved, ctx):
    ref, folder = saved("gpt2", layers=4)
    student = ctx.build("inheritune:student", reference=str(folder), k=2)
    baseline = ctx.build("inheritune:student", reference=str(folder), k=2, random_init=True)
    assert len(student.transformer.h) == len(baseline.transformer.h) == 2
    assert torch.equal(student.transformer.h[1].mlp.c_fc.weight, ref.transformer.h[1].mlp.c_fc.weight)
    assert not torch.equal(baseline.transformer.h[1].mlp.c_fc.weight, ref.transformer.h[1].mlp.c_fc.weight)
    assert not torch.equal(baseline.transformer.wte.weight, ref.transformer.wte.weight)


def test_seed_defaults_to_the_runs(saved, ctx):
    _, folder = saved("gpt2", layers=4)
    wpe = [ctx.build("inheritune:student", reference=str(folder), **kw).transformer.wpe.weight
           for kw in ({}, {"seed": 3}, {"seed": 4})]  # position embeddings are re-initialised
    assert torch.equal(wpe[0], wpe[1]) and not torch.equal(wpe[0], wpe[2])


def test_student_errors(saved, ctx):
    _, folder = saved("gpt2", layers=4, vocab=96)
    with pytest.raises(UserError, match="needs reference"):
        ctx.build("inheritune:student")
    with pytest.raises(UserError, match="unknown argument 'layers'"):
        ctx.build("inheritune:student", reference=str(folder), layers=2)
    with pytest.raises(UserError, match="96 token embeddings but the tokenizer has 300"):
        ctx.build("inheritune:student", reference=str(folder), vocab_size=300)
