"""The demo's diagnostics: AUC equals the pair count it is defined by (ties half), its standard error the
Hanley-McNeil formula; the oracle / chosen-given-oracle counts by hand."""

from __future__ import annotations

import math
import random

import pytest
from paperloom_alphallm.evaluation import auc, auc_se, critic_diagnostics


def pair_count_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_the_pair_count(seed):
    rng = random.Random(seed)
    for n in (2, 7, 40):
        scores = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(n)]  # with ties
        labels = [rng.random() < 0.4 for _ in range(n)]
        if 0 < sum(labels) < n:
            assert auc(scores, labels) == pytest.approx(pair_count_auc(scores, labels))
    assert auc([0.9, 0.1], [True, False]) == 1.0 and auc([0.1, 0.9], [True, False]) == 0.0
    assert math.isnan(auc([0.3, 0.4], [True, True]))


def test_auc_se_is_hanley_mcneil():
    a, p, n = 0.75, 30, 50
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    want = math.sqrt((a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n))
    assert auc_se(a, p, n) == pytest.approx(want)
    assert auc_se(0.75, 300, 500) < auc_se(0.75, 30, 50)


def test_diagnostics_by_hand():
    rows = [  # problem 1: the tree held a right leaf and eta-MCTS chose it; problem 2: held one, chose wrong
        {"mcts": True, "mcts_any": True, "sc_any": True, "leaves": 2, "leaf_right": [True, False],
         "leaf_score": [0.8, 0.3], "sample_right": [True, False], "sample_heads": {"score": [0.9, 0.2]}},
        {"mcts": False, "mcts_any": True, "sc_any": False, "leaves": 1, "leaf_right": [True],
         "leaf_score": [0.4], "sample_right": [False, False], "sample_heads": {"score": [0.5, 0.1]}},
        {"mcts": False, "mcts_any": False, "sc_any": False, "leaves": 0, "leaf_right": [], "leaf_score": [],
         "sample_right": [False], "sample_heads": {"score": [0.6]}},
    ]
    d = critic_diagnostics(rows)
    assert d["mcts_any_accuracy"] == pytest.approx(2 / 3) and d["sc_any_accuracy"] == pytest.approx(1 / 3)
    assert d["mcts_chosen_given_any"] == pytest.approx(0.5) and d["mcts_leaves"] == pytest.approx(1.0)
    assert d["auc_score"] == pytest.approx(1.0) and d["sample_accuracy"] == pytest.approx(1 / 5)
    assert d["auc_leaf_score"] == pytest.approx(1.0)  # right leaves 0.8, 0.4 vs the wrong one 0.3
