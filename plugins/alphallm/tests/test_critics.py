"""Critics: the weighted score equals its formula, the training targets of value / PRM / ORM from rollouts,
fitting through the Lightning path lowers the loss and changes every parameter, save/load round trip."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import run_ctx
from paperloom_alphallm.critics import CriticData, Critics, critic_examples, critic_loss, weighted_score
from paperloom_alphallm.model import Critic, load_critic, save_critic
from reference import score


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_is_the_stated_weighted_sum(stepper, seed):
    rng = random.Random(seed)
    for _ in range(50):
        v, p, o = rng.random(), rng.random(), rng.random()
        bv, bp, bo = rng.uniform(0, 2), rng.uniform(0, 2), rng.uniform(0, 2)
        assert weighted_score(v, p, o, bv, bp, bo) == pytest.approx(score(v, p, o, bv, bp, bo))
    c = Critics(None, stepper, 1.0, 2.0, 3.0, orm="exact")
    # no learned critic: value and PRM do not vote; the exact ORM does
    assert c.b == {"value": 0.0, "prm": 0.0, "orm": 3.0}
    assert c.score(0.9, 0.9, 0.5) == pytest.approx(0.5)
    assert c.score(0.9, 0.9, None) == 0.0


def test_scaled_score_with_all_three_heads(tok, stepper, policy):
    critic = Critic(policy, ("value", "prm", "orm"))
    c = Critics(critic, stepper, 1.0, 0.5, 2.0, orm="learned")
    assert c.score(0.2, 0.4, 0.8) == pytest.approx((0.2 + 0.5 * 0.4 + 2.0 * 0.8) / 3.5)
    assert c.score(0.2, 0.4, None) == pytest.approx((0.2 + 0.5 * 0.4) / 1.5)  # no rollout: ORM drops out


def test_training_targets_from_rollouts_by_hand(stepper):
    prob = {"question": "Ann has 3 eggs. Ann gets 2. How many eggs?", "answer": "3+2=5\n#### 5"}
    comps = ["3+2=5\n#### 5\n", "3+2=5\n#### 6\n", "3+2=6\n#### 6\n", "3+2=5\n#### 5\n"]
    ex = critic_examples([prob], [comps], stepper)
    assert [e["r"] for e in ex] == [1.0, 0.0, 0.0, 1.0]
    # PRM target of a step: the mean return of the sampled trajectories sharing the prefix through it
    assert ex[0]["p_tgt"] == pytest.approx([2 / 3, 1.0])  # "3+2=5\n" in 3 trajectories, 2 correct
    assert ex[1]["p_tgt"] == pytest.approx([2 / 3, 0.0])
    assert ex[2]["p_tgt"] == pytest.approx([0.0, 0.0])
    n_prompt = len(stepper.encode("Q: " + prob["question"] + "\nA:\n"))
    a, b = len(stepper.encode("3+2=5\n")), len(stepper.encode("#### 5\n"))
    assert ex[0]["v_pos"] == [n_prompt - 1, n_prompt + a - 1, n_prompt + a + b - 1]  # after the prompt, each step
    assert ex[0]["o_pos"] == len(ex[0]["ids"]) - 1
    item = CriticData(ex, 1)[1]
    assert item["v_t"][item["v_m"] > 0].tolist() == [0.0, 0.0, 0.0]
    assert item["o_m"].sum() == 1 and item["p_m"].sum() == 2


def test_fit_lowers_the_loss_changes_every_parameter_and_round_trips(tmp_path, tok, stepper, policy):
    import copy

    from paperloom_alphallm.learning import train_critic

    from paperloom.schemas import OptimConfig, TrainerConfig

    prob = {"question": "Ann has 3 eggs. Ann gets 2. How many eggs?", "answer": "3+2=5\n#### 5"}
    comps = ["3+2=5\n#### 5\n", "3+2=6\n#### 6\n"] * 4
    ex = critic_examples([prob], [comps], stepper)
    torch.manual_seed(0)
    critic = Critic(copy.deepcopy(policy))
    data = CriticData(ex, tok.pad_token_id)
    batch = {k: torch.stack([data[i][k] for i in range(len(data))]) for k in data[0]}
    before = float(critic_loss(critic, batch))
    snap = {n: p.detach().clone() for n, p in critic.named_parameters()}
    train_critic(critic, ex, tok.pad_token_id, OptimConfig(lr=3e-3, warmup_steps=0, weight_decay=0.0),
                 TrainerConfig(max_steps=30, batch_size=8, checkpoint_every=100, log_every=10),
                 run_ctx(tmp_path / "run"))
    assert float(critic_loss(critic, batch)) < before
    assert all(not torch.equal(p, snap[n]) for n, p in critic.named_parameters()), "a parameter did not move"
    seqs = [e["ids"] for e in ex[:3]]
    got = critic.at_last(seqs, tok.pad_token_id)
    assert got["value"][0] > got["value"][1]  # the correct trajectory's end is valued higher
    back = load_critic(save_critic(critic, tmp_path / "critic", tok))
    again = back.at_last(seqs, tok.pad_token_id)
    for h in ("value", "prm", "orm"):
        assert again[h] == pytest.approx(got[h], abs=1e-6)


def test_padding_does_not_change_a_sequence_s_value(tok, policy):
    critic = Critic(policy, ("value",))
    short, long = [5, 6, 7], [5, 6, 7, 8, 9, 10, 11]
    alone = critic.at_last([short], tok.pad_token_id)["value"][0]
    batched = critic.at_last([short, long], tok.pad_token_id)["value"][0]
    assert batched == pytest.approx(alone, abs=1e-6)
