"""The declarations: the plugin conforms to the core's contract; the paper presets hold Table 5's values."""

from __future__ import annotations

from paperloom.runner import resolve_task_config
from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("alphallm")


def test_paper_presets_hold_table_5():
    from paperloom.plugins import registry

    for task in ("alphallm:search", "alphallm:evaluate", "alphallm:improve"):
        _, _, _, cfg = resolve_task_config(registry(), task, "paper")
        s = cfg.search
        assert (s.c, s.alpha, s.c_max0, s.c_max, s.c_min0, s.c_min) == (1.0, 1.0, 60, 10, 10, 2)
        assert (s.merge_threshold, s.fast_rollouts, s.b_value, s.b_prm, s.b_orm) == (50, 4, 1.0, 1.0, 1.0)
    _, _, _, imp = resolve_task_config(registry(), "alphallm:improve", "paper")
    assert (imp.improve.rounds, imp.improve.optim.lr, imp.improve.optim.min_lr, imp.improve.trainer.batch_size) == (
        2, 5e-6, 1e-6, 128)
    assert imp.critics.samples == 50 and imp.data == "alphallm:gsm8k"
