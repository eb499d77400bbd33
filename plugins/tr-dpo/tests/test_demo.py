"""The demo's protocol statistics on hand-made curves: frontier, over-optimisation drop, paired differences."""

import math
from types import SimpleNamespace

import pytest
from paperloom_tr_dpo.demo import budget_key, frontier, summarize


def point(step, reward, kl, win=0.5):
    return {"step": step, "reward": reward, "kl": kl, "win_rate": win}


def test_frontier_is_the_best_reward_within_the_kl_budget():
    pts = [point(0, 1.0, 0.0), point(1, 1.5, 0.8), point(2, 3.0, 2.5), point(3, 2.0, 1.9)]
    assert frontier(pts, 0.5) == 1.0 and frontier(pts, 1.0) == 1.5 and frontier(pts, 2.0) == 2.0
    assert frontier(pts, 4.0) == 3.0
    assert budget_key(0.5) == "kl0p5" and budget_key(2.0) == "kl2"


def test_summary_by_hand():
    cfg = SimpleNamespace(margin_se=2.0, seeds=2, eval_prompts=4, eval_samples=2, kl_budgets=[1.0, 4.0])
    sft = {"reward": 1.0, "reward_se": 0.1}
    runs = {  # two seeds each; the TR run of seed k is paired with the DPO run of seed k
        "dpo": [[point(1, 2.0, 0.5), point(2, 1.5, 3.0, 0.6)], [point(1, 1.8, 2.0), point(2, 2.5, 3.5, 0.7)]],
        "tr-dpo-hard": [[point(1, 1.2, 0.9), point(2, 3.0, 6.0, 0.8)], [point(1, 1.0, 0.5), point(2, 2.0, 5.5, 0.9)]],
    }
    m = summarize(cfg, runs, sft)
    assert m["dpo_reward"] == pytest.approx(2.0) and m["dpo_reward_se"] == pytest.approx(0.5)  # finals 1.5, 2.5
    assert m["dpo_win_rate"] == pytest.approx(0.65)
    assert m["dpo_drop"] == pytest.approx(0.25)  # peaks 2.0 and 2.5: drops 0.5 and 0
    # frontier at KL <= 1: seed 0 best 2.0 (step 1), seed 1 only the SFT start (1.0)
    assert m["dpo_frontier_kl1"] == pytest.approx(1.5) and m["tr_dpo_hard_frontier_kl1"] == pytest.approx(1.1)
    d = [1.2 - 2.0, 1.0 - 1.0]  # paired TR - DPO at KL <= 1
    assert m["tr_dpo_hard_minus_dpo_frontier_kl1"] == pytest.approx(sum(d) / 2)
    assert m["tr_dpo_hard_minus_dpo_frontier_kl1_se"] == pytest.approx(abs(d[0] - d[1]) / 2)
    assert m["tr_dpo_hard_minus_dpo_kl"] == pytest.approx(2.5)  # (6 - 3 + 5.5 - 3.5) / 2
    diff, se = 2.0 - 1.0, math.hypot(0.5, 0.1)  # DPO over SFT: seed spread and the SFT estimate's own error
    assert m["dpo_minus_sft_reward_lower"] == pytest.approx(diff - 2.0 * se)
