"""The synthetic task: the hidden gold reward and Bradley-Terry labels that follow it."""

from __future__ import annotations

from paperloom_tr_dpo import synthetic


def test_gold_reward_and_bradley_terry():
    assert synthetic.gold_reward("tell me about fruits:", " apple pear fig") == 3.0
    assert synthetic.gold_reward("tell me about fruits:", " apple apple cat<|endoftext|>") == 1.5
    assert synthetic.gold_reward("tell me about tools:", "") == -0.5
    rows = synthetic.synthetic_pairs(400, seed=1)
    better = sum(synthetic.gold_reward(r["prompt"], r["chosen"]) > synthetic.gold_reward(r["prompt"], r["rejected"])
                 for r in rows)
    worse = sum(synthetic.gold_reward(r["prompt"], r["chosen"]) < synthetic.gold_reward(r["prompt"], r["rejected"])
                for r in rows)
    assert better > 1.5 * worse  # labels follow the gold reward, with Bradley-Terry noise
