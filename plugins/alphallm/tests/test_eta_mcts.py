"""eta-MCTS: the paper's formulas on hand-built trees and random inputs (vs tests/reference.py), the visit-count
invariant after every backup, state merge, budgets and determinism."""

from __future__ import annotations

import math
import random

import pytest
import torch
from paperloom_alphallm import eta_mcts
from paperloom_alphallm.critics import Critics
from paperloom_alphallm.eta_mcts import EtaMCTS, Node, backup, branching, importance, select_child
from paperloom_alphallm.options import Option
from reference import levenshtein, most_distinct, n_children, puct


def node(parent, logprob=-1.0, n_ids=2, N=0, W=0.0, text="x"):
    n = Node([], Option([0] * n_ids, text, logprob, False), parent, 0 if parent is None else parent.depth + 1)
    n.N, n.W = N, W
    if parent is not None:
        parent.children.append(n)
    return n


def test_puct_selection_on_a_hand_built_tree():
    root = Node([], None, None, 0)
    root.N = 10
    a = node(root, logprob=math.log(0.5) * 2, n_ids=2, N=6, W=3.0)  # per-token prob 0.5, Q = 0.5
    b = node(root, logprob=math.log(0.25) * 2, n_ids=2, N=1, W=0.9)  # per-token prob 0.25, Q = 0.9
    c = node(root, logprob=math.log(0.25) * 4, n_ids=4, N=2, W=0.2)  # per-token prob 0.25, Q = 0.1
    priors = [0.5, 0.25, 0.25]  # exp(logprob / len) normalised: 0.5, 0.25, 0.25 -> /1.0
    assert eta_mcts.priors(root.children) == pytest.approx(priors)
    want = [puct(0.5, 0.5, 10, 6, 1.0), puct(0.9, 0.25, 10, 1, 1.0), puct(0.1, 0.25, 10, 2, 1.0)]
    assert want == pytest.approx([0.5 + 0.5 * math.sqrt(10) / 7, 0.9 + 0.25 * math.sqrt(10) / 2,
                                  0.1 + 0.25 * math.sqrt(10) / 3])
    assert select_child(root, 1.0) is [a, b, c][want.index(max(want))] is b
    assert select_child(root, 0.0) is b  # pure exploitation: the highest Q
    a.W = 6.0  # Q(a) = 1.0 now dominates even with exploration
    assert select_child(root, 0.1) is a
    b.terminal = True  # terminal children are never selected again
    assert select_child(root, 0.0) is a


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_puct_and_branching_equal_their_formulas_on_random_inputs(seed):
    rng = random.Random(seed)
    for _ in range(200):
        q, p, n, m, c = rng.random(), rng.random(), rng.randint(1, 100), rng.randint(0, 50), rng.uniform(0, 3)
        assert eta_mcts.puct(q, p, n, m, c) == pytest.approx(puct(q, p, n, m, c))
        vals = [rng.random() for _ in range(rng.randint(1, 6))]
        v = rng.random()
        imp = importance(v, vals)
        assert imp == pytest.approx(max(abs(x - v) for x in vals))
        depth, alpha = rng.randint(0, 3), rng.uniform(0, 20)
        cmin0, cmin = rng.randint(1, 10), rng.randint(1, 4)
        cmax0, cmax = cmin0 + rng.randint(0, 50), cmin + rng.randint(0, 8)
        assert branching(imp, depth, alpha, (cmin0, cmin), (cmax0, cmax)) == n_children(
            imp, depth, alpha, cmin0, cmin, cmax0, cmax)


def test_branching_by_hand():
    # Table 5 (GSM8K small): c_min = (10, 2), c_max = (60, 10), alpha = 1
    assert branching(0.0, 0, 1.0, (10, 2), (60, 10)) == 10  # the root gets at least c_min(0)
    assert branching(0.0, 2, 1.0, (10, 2), (60, 10)) == 2
    assert branching(0.9, 1, 10.0, (10, 2), (60, 10)) == 10  # floor(9.0) + 1 = 10 = c_max(t)
    assert branching(0.35, 1, 10.0, (10, 2), (60, 10)) == 4  # floor(3.5) + 1
    assert branching(0.99, 1, 100.0, (10, 2), (60, 10)) == 10  # capped
    assert importance(0.5, [0.4, 0.9, 0.45]) == pytest.approx(0.4)


def test_state_merge_returns_the_most_distinct_candidate():
    i, d = eta_mcts.most_distinct(["7+5=12\n", "7+5=13\n", "8-1=7\n"], ["7+5=12\n", "7+5=11\n"])
    assert (i, d) == (2, 5)  # "8-1=7\n" is 5 edits from "7+5=12\n" and from "7+5=11\n"
    assert eta_mcts.most_distinct(["a", "b"], []) == (0, math.inf)
    rng = random.Random(0)
    for _ in range(100):
        words = ["".join(rng.choice("ab+=1\n") for _ in range(rng.randint(0, 7))) for _ in range(rng.randint(2, 6))]
        sib = ["".join(rng.choice("ab+=1\n") for _ in range(rng.randint(0, 7))) for _ in range(rng.randint(1, 4))]
        assert eta_mcts.edit_distance(words[0], sib[0]) == levenshtein(words[0], sib[0])
        assert eta_mcts.most_distinct(words, sib)[0] == most_distinct(words, sib)


def _check_tree(root):
    stack = [root]
    while stack:
        n = stack.pop()
        if n.N:  # every visited node: N = 1 + sum of the children's N, W = own score + children's W
            assert n.N == 1 + sum(c.N for c in n.children)
            assert n.W == pytest.approx(n.score + sum(c.W for c in n.children))
        stack.extend(n.children)


@pytest.mark.parametrize("seed", [0, 1])
def test_visit_counts_hold_after_every_backup(monkeypatch, policy, stepper, search_cfg, seed):
    roots = []
    original = eta_mcts.backup

    def checked(n, value):
        original(n, value)
        root = n
        while root is not None and root.parent is not None:
            root = root.parent
        roots.append(root)
        _check_tree(root)

    monkeypatch.setattr(eta_mcts, "backup", checked)
    torch.manual_seed(seed)
    s = EtaMCTS(policy, stepper, Critics(None, stepper, orm="none"), search_cfg)
    r = s.search("Ann has 3 eggs. Ann gets 2. How many eggs?")
    assert len(roots) == r.nodes  # one backup per node created
    assert roots[-1].N == r.nodes


def test_budget_and_determinism(policy, stepper, search_cfg):
    crit = Critics(None, stepper, orm="none")
    torch.manual_seed(3)
    a = EtaMCTS(policy, stepper, crit, search_cfg).search("Bob has 5 pens. Bob eats 1. How many pens?")
    torch.manual_seed(3)
    b = EtaMCTS(policy, stepper, crit, search_cfg).search("Bob has 5 pens. Bob eats 1. How many pens?")
    assert (a.text, a.rollouts, a.tokens, a.nodes) == (b.text, b.rollouts, b.tokens, b.nodes)
    # the budget is checked before each generation: at most one expansion (c_min0 options + its fast rollouts)
    assert search_cfg.rollouts <= a.rollouts <= search_cfg.rollouts + search_cfg.c_min0 * (1 + 12) or a.nodes > 1
    search_cfg.max_tokens = 30
    torch.manual_seed(3)
    c = EtaMCTS(policy, stepper, crit, search_cfg).search("Bob has 5 pens. Bob eats 1. How many pens?")
    assert c.tokens < a.tokens and c.tokens >= 30


def test_backup_adds_one_visit_and_the_value_to_every_ancestor():
    root = Node([], None, None, 0)
    a = node(root)
    b = node(a)
    backup(b, 0.25)
    backup(a, 0.5)
    assert (root.N, a.N, b.N) == (2, 2, 1) and (root.W, a.W, b.W) == (0.75, 0.75, 0.25)
