"""The declarations: the plugin conforms to the core's contract, and the paper preset holds the paper's values."""

from __future__ import annotations

from paperloom.runner import resolve_task_config
from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("tr-dpo")


def test_paper_preset_holds_the_paper_values():
    from paperloom.plugins import registry

    _, _, _, paper = resolve_task_config(registry(), "tr-dpo:align", "paper")
    assert (paper.beta, paper.ref.alpha, paper.ref.tau, paper.train.lr) == (0.05, 0.6, 512, 1e-6)
    assert paper.train.batch_size * paper.train.grad_accum == 64 and paper.data == "tr-dpo:hh"
