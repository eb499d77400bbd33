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
    r = EtaMCTS(policy, stepper, critics, cfg, fast).search(item["question"], None)
    samples = sample_within(policy, stepper, item["question"], max(1, r.rollouts), cfg.temperature)
    sc = self_consistency(samples)
    rr = rerank(samples, critics, stepper.encode(prompt(item["question"])))
    return {"greedy": is_correct(g["text"], gold), "mcts": is_correct(r.text, gold),
            "sc": is_correct("#### " + sc["answer"], gold), "rerank": is_correct("#### " + rr["answer"], gold),
            "mcts_rollouts": r.rollouts, "sc_rollouts": sc["rollouts"], "mcts_tokens": r.tokens,
            "mcts_nodes": r.nodes, "samples": sc["samples"]}


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
