"""eta-MCTS against greedy decoding, self-consistency and re-ranking on the same problems at equal rollout
budgets (the paper's Table 3). For every problem the sampling baselines get the options eta-MCTS actually
used there (never more), drawn as complete sampled solutions; self-consistency and re-ranking share them."""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch

from paperloom import stats

from .critics import Critics
from .data import is_correct, prompt
from .decoding import greedy, rerank, sample_within, self_consistency
from .eta_mcts import EtaMCTS
from .options import Stepper

METHODS = ("greedy", "sc", "rerank", "mcts")


def _one(item: dict, policy: Any, stepper: Stepper, critics: Critics, cfg: Any, fast: Any) -> dict:
    torch.set_num_threads(1)
    gold = item["answer"]
    g = greedy(policy, stepper, item["question"])
    r = EtaMCTS(policy, stepper, critics, cfg, fast).search(item["question"], None)  # never sees the answer
    samples = sample_within(policy, stepper, item["question"], max(1, r.rollouts), cfg.temperature)
    sc = self_consistency(samples)
    rr = rerank(samples, critics, stepper.encode(prompt(item["question"])))
    leaves = [c for c in r.candidates if c["in_tree"]]
    return {"greedy": is_correct(g["text"], gold), "mcts": is_correct(r.text, gold),
            "sc": is_correct("#### " + sc["answer"], gold), "rerank": is_correct("#### " + rr["answer"], gold),
            # diagnostics, scored by the exact checker after the fact: was any complete leaf of the tree / any
            # sample right (the best a perfect critic could choose), and the critics' scores of the samples
            "mcts_any": any(is_correct(c["text"], gold) for c in leaves),
            "sc_any": any(is_correct(o.text, gold) for o in samples),
            "leaves": len(leaves), "leaf_right": [bool(is_correct(c["text"], gold)) for c in leaves],
            "leaf_score": [c["score"] for c in leaves],
            "sample_right": [bool(is_correct(o.text, gold)) for o in samples], "sample_heads": rr["heads"],
            "mcts_rollouts": r.rollouts, "sc_rollouts": sc["rollouts"], "mcts_tokens": r.tokens,
            "mcts_nodes": r.nodes, "samples": sc["samples"]}


def auc(scores: list[float], labels: list[bool]) -> float:
    """Area under the ROC curve: P(score of a right one > score of a wrong one), ties counting half
    (Mann-Whitney U / (n_pos n_neg)); nan without both classes."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = sum(r for r, y in zip(ranks, labels) if y)
    return (r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def auc_se(a: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from n_pos positives and n_neg negatives."""
    if not n_pos or not n_neg or a != a:
        return float("nan")
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return max(var, 0.0) ** 0.5


def critic_diagnostics(rows: list[dict], suffix: str = "") -> dict[str, float]:
    """How well the critics rank: AUC of each head (and of the weighted score) at the final state of the
    sampled solutions against their exact correctness, pooled over problems; the same for the leaves of the
    eta-MCTS trees; the share of problems with a right leaf / sample, and how often eta-MCTS chose a right
    answer when its tree held one."""
    out: dict[str, float] = {}
    right = [y for r in rows for y in r["sample_right"]]
    for head in ("value", "prm", "orm", "score"):
        xs = [x for r in rows for x in r["sample_heads"].get(head, [])]
        if len(xs) == len(right):
            out[f"auc_{head}{suffix}"] = a = auc(xs, right)
            out[f"auc_{head}_se{suffix}"] = auc_se(a, sum(right), len(right) - sum(right))
    out[f"auc_leaf_score{suffix}"] = auc([x for r in rows for x in r["leaf_score"]],
                                         [y for r in rows for y in r["leaf_right"]])
    out[f"sample_accuracy{suffix}"] = sum(right) / max(1, len(right))
    out[f"mcts_any_accuracy{suffix}"], out[f"mcts_any_se{suffix}"] = mean_se([float(r["mcts_any"]) for r in rows])
    out[f"sc_any_accuracy{suffix}"], out[f"sc_any_se{suffix}"] = mean_se([float(r["sc_any"]) for r in rows])
    hit = [float(r["mcts"]) for r in rows if r["mcts_any"]]
    out[f"mcts_chosen_given_any{suffix}"] = sum(hit) / len(hit) if hit else float("nan")
    out[f"mcts_leaves{suffix}"] = sum(r["leaves"] for r in rows) / max(1, len(rows))
    return out


def compare(ctx: Any, policy: Any, stepper: Stepper, critics: Critics, problems: list[dict], budgets: list[int],
            search_cfg: Any, fast: Any = None) -> tuple[dict[str, float], dict[int, list[dict]]]:
    """Accuracy, standard errors and paired differences of every method at every budget."""
    policy.eval()
    metrics: dict[str, float] = {"problems": float(len(problems))}
    per_budget: dict[int, list[dict]] = {}
    for b in budgets:
        cfg = copy.deepcopy(search_cfg)
        cfg.rollouts = b
        fn = functools.partial(_one, policy=policy, stepper=stepper, critics=critics, cfg=cfg, fast=fast)
        rows = ctx.map(fn, problems, ids=[p["question"][:40] for p in problems], description=f"budget {b}")
        per_budget[b] = rows
        for m in METHODS:
            acc, se = mean_se([float(r[m]) for r in rows])
            metrics[f"{m}_accuracy_b{b}"], metrics[f"{m}_se_b{b}"] = acc, se
        for m in ("greedy", "sc", "rerank"):
            d, se = mean_se([float(r["mcts"]) - float(r[m]) for r in rows])
            metrics[f"mcts_minus_{m}_b{b}"], metrics[f"mcts_minus_{m}_se_b{b}"] = d, se
        metrics[f"mcts_rollouts_b{b}"] = sum(r["mcts_rollouts"] for r in rows) / len(rows)
        metrics[f"sc_rollouts_b{b}"] = sum(r["sc_rollouts"] for r in rows) / len(rows)
        metrics[f"mcts_tokens_b{b}"] = sum(r["mcts_tokens"] for r in rows) / len(rows)
        metrics[f"mcts_nodes_b{b}"] = sum(r["mcts_nodes"] for r in rows) / len(rows)
        metrics.update(critic_diagnostics(rows, f"_b{b}"))
        for m in ("mcts_any", "sc_any"):
            d, se = mean_se([float(r[m]) - float(r["greedy"]) for r in rows])
            metrics[f"{m}_minus_greedy_b{b}"], metrics[f"{m}_minus_greedy_se_b{b}"] = d, se
    return metrics, per_budget


def mean_se(xs: list[float]) -> tuple[float, float]:
    """`paperloom.stats.mean_se`, with (nan, nan) for no values (an empty budget row)."""
    return stats.mean_se(xs) if xs else (float("nan"), float("nan"))


def greedy_accuracy(ctx: Any, policy: Any, stepper: Stepper, problems: list[dict]) -> tuple[float, float, list]:
    policy.eval()
    fn = functools.partial(_greedy_one, policy=policy, stepper=stepper)
    right = ctx.map(fn, problems, ids=[p["question"][:40] for p in problems], description="greedy")
    acc, se = mean_se([float(x) for x in right])
    return acc, se, right


def _greedy_one(item: dict, policy: Any, stepper: Stepper) -> bool:
    torch.set_num_threads(1)
    return bool(is_correct(greedy(policy, stepper, item["question"])["text"], item["answer"]))
