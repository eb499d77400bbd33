"""The self-improvement loop (Sec. 4.5, App. 7.1): search problems with eta-MCTS, keep the trajectories that
pass the filter f (score > gamma, or the exact answer checker where problems carry answers), fine-tune the
policy on them (target loss), refit the critics on the new policy's rollouts; repeat for R rounds.

Every map over problems goes through ``ctx.map`` (``--workers N`` processes, or Ray), each problem seeded
from (run seed, index), so results do not depend on the number of workers.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch

from .critics import Critics, critic_examples
from .data import is_correct, prompt, verified
from .eta_mcts import EtaMCTS
from .learning import sft, train_critic
from .model import Critic
from .options import Stepper, rollout


def _search_one(item: dict, policy: Any, stepper: Stepper, critics: Critics, cfg: Any, fast: Any) -> dict:
    torch.set_num_threads(1)  # one process per core
    gold = item.get("answer") if cfg.orm == "exact" else None
    r = EtaMCTS(policy, stepper, critics, cfg, fast).search(item["question"], gold)
    out = {"question": item["question"], "solution": r.text, "answer": r.answer, "score": r.score,
           "rollouts": r.rollouts, "tokens": r.tokens, "nodes": r.nodes}
    if item.get("answer"):
        out["correct"] = bool(is_correct(r.text, item["answer"]))
        right = [c for c in r.candidates if c["in_tree"] and verified(c["text"], item["answer"])]
        best = max(right, key=lambda c: c["score"]) if right else None  # the tree's best verified trajectory
        out["right_solution"] = r.text if verified(r.text, item["answer"]) else (best["text"] if best else None)
    return out


def search_problems(ctx: Any, problems: list[dict], policy: Any, stepper: Stepper, critics: Critics, cfg: Any,
                    fast: Any = None, description: str = "eta-MCTS") -> list[dict]:
    policy.eval()
    fn = functools.partial(_search_one, policy=policy, stepper=stepper, critics=critics, cfg=cfg, fast=fast)
    return ctx.map(fn, problems, ids=[p["question"][:40] for p in problems], description=description)


def _rollouts_one(item: dict, policy: Any, stepper: Stepper, samples: int, temperature: float) -> list[str]:
    torch.set_num_threads(1)
    return [o.text for o in rollout(policy, stepper.encode(prompt(item["question"])), samples, stepper, temperature)]


def collect_rollouts(ctx: Any, problems: list[dict], policy: Any, stepper: Stepper, samples: int,
                     temperature: float = 1.0) -> list[list[str]]:
    """`samples` sampled solutions per problem (the critics' training trajectories)."""
    policy.eval()
    fn = functools.partial(_rollouts_one, policy=policy, stepper=stepper, samples=samples, temperature=temperature)
    return ctx.map(fn, problems, ids=[p["question"][:40] for p in problems], description="rollouts")


def fit_critics(ctx: Any, policy: Any, stepper: Stepper, problems: list[dict], cfg: Any) -> tuple[Critic, dict]:
    """Critics initialised from the policy (as in the paper) and fitted on its rollouts' returns."""
    comps = collect_rollouts(ctx, problems, policy, stepper, cfg.samples, cfg.temperature)
    examples = critic_examples(problems, comps, stepper)
    rate = sum(e["r"] for e in examples) / max(1, len(examples))
    critic = Critic(copy.deepcopy(policy), tuple(cfg.heads))
    stats = train_critic(critic, examples, stepper.tokenizer.pad_token_id or 0, cfg.optim, cfg.trainer, ctx)
    return critic, {**stats, "rollout_accuracy": rate}


def keep(results: list[dict], mode: str, threshold: float) -> list[dict]:
    """The filter f of Sec. 4.5: trajectories with a critic score above gamma, or exactly correct ones."""
    if mode == "exact":  # the exact checker: a right trajectory of the tree (the chosen one if it is right)
        return [{**r, "solution": r["right_solution"]} for r in results if r.get("right_solution")]
    return [r for r in results if r["score"] > threshold]


def improve_round(ctx: Any, name: str, policy: Any, stepper: Stepper, critic: Any, problems: list[dict],
                  search_cfg: Any,
                  settings: Any, critic_cfg: Any, critic_problems: list[dict]) -> tuple[Any, Any, dict]:
    """One round: search -> filter -> SFT (a copy of the policy) -> refit the critics. Returns the new policy,
    critic and the round's statistics."""
    # stages are flat (round1-sft, round1-critics): every stage's ctx.map then reaches the run's --workers
    import time

    t0 = time.time()
    critics = Critics(critic, stepper, search_cfg.b_value, search_cfg.b_prm, search_cfg.b_orm, search_cfg.orm)
    results = search_problems(ctx, problems, policy, stepper, critics, search_cfg, description="search (train)")
    kept = keep(results, settings.keep, settings.threshold)
    ctx.log.info(f"{name}: searched {len(results)} problems in {time.time() - t0:.0f} s, kept {len(kept)}")
    stats = {"searched": len(results), "kept": len(kept),
             "search_train_accuracy": sum(bool(r.get("correct")) for r in results) / max(1, len(results))}
    new_policy = copy.deepcopy(policy)
    if kept:
        stage = ctx.stage(f"{name}-sft")
        stats.update(sft(new_policy, stepper.tokenizer, kept, settings.optim, settings.trainer, stage))
    else:  # nothing passed the filter: the policy stays as it is this round
        ctx.log.warning(f"no trajectory of {len(results)} passed the filter ({settings.keep}); policy unchanged")
        stats.update({"sft_examples": 0, "sft_steps": 0})
    new_critic = critic
    if settings.retrain_critics:
        new_critic, cstats = fit_critics(ctx.stage(f"{name}-critics"), new_policy, stepper, critic_problems, critic_cfg)
        stats.update({f"critic_{k}" if not k.startswith("critic") else k: v for k, v in cstats.items()})
    return new_policy, new_critic, stats


def evaluate_policy(ctx: Any, policy: Any, stepper: Stepper, critic: Any, held: list[dict], search_cfg: Any,
                    with_mcts: bool = True) -> dict:
    """Greedy and eta-MCTS accuracy (with standard errors) on held-out problems."""
    from .evaluation import greedy_accuracy, mean_se

    acc, se, _ = greedy_accuracy(ctx, policy, stepper, held)
    row = {"greedy_accuracy": acc, "greedy_se": se}
    if with_mcts:
        cfg = copy.copy(search_cfg)
        cfg.orm = "learned" if cfg.orm == "exact" else cfg.orm  # held-out answers are never shown to the search
        critics = Critics(critic, stepper, cfg.b_value, cfg.b_prm, cfg.b_orm, cfg.orm)
        res = search_problems(ctx, held, policy, stepper, critics, cfg, description="search (held-out)")
        row["mcts_accuracy"], row["mcts_se"] = mean_se([float(r["correct"]) for r in res])
    return row


def run_rounds(ctx: Any, policy: Any, stepper: Stepper, critic: Any, train: list[dict], held: list[dict],
               search_cfg: Any, s: Any, critic_cfg: Any, round0: dict | None = None) -> tuple[Any, list[dict], dict]:
    """R rounds; round r searches its own slice of `train` (fresh prompts each round); the problems after the
    rounds' slices train the critics. A finished round is saved in stages/round<r>/, so --resume skips it."""
    from paperloom_lm.hf import load_causal_lm, save_hf

    from paperloom.io import atomic_write_json, read_json

    from .model import load_critic, save_critic

    crit_probs = train[s.problems * s.rounds:] or train
    if critic is None:
        critic, stats = fit_critics(ctx.stage("critics-0"), policy, stepper, crit_probs, critic_cfg)
        ctx.log.info(f"critics fitted on {stats['critic_examples']} rollouts "
                     f"(accuracy {stats['rollout_accuracy']:.3f})")
    rows = [{"round": 0, **(round0 or evaluate_policy(ctx, policy, stepper, critic, held, search_cfg))}]
    ctx.log.info(_describe(rows[-1]))
    for r in range(1, s.rounds + 1):
        stage = ctx.stage(f"round{r}")
        done = stage.out / "result.json"
        if ctx.resume and done.is_file():
            stats = read_json(done)
            policy, critic = load_causal_lm(stage.out / "policy").eval(), load_critic(stage.out / "critic")
            ctx.log.info(f"round {r}: finished earlier, loaded")
        else:
            problems = train[(r - 1) * s.problems: r * s.problems]
            policy, critic, stats = improve_round(ctx, f"round{r}", policy, stepper, critic, problems, search_cfg, s,
                                                  critic_cfg, crit_probs)
            stats.update(evaluate_policy(stage, policy, stepper, critic, held, search_cfg))
            save_hf(policy, stage.out / "policy", stepper.tokenizer)
            save_critic(critic, stage.out / "critic")
            atomic_write_json(done, stats)
        rows.append({"round": r, **stats})
        ctx.log_metrics({k: v for k, v in rows[-1].items() if isinstance(v, (int, float))}, step=r)
        ctx.log.info(f"round {r}: kept {stats['kept']}/{stats['searched']} trajectories; " + _describe(rows[-1]))
    metrics = {}
    for row in rows:
        for k in ("greedy_accuracy", "greedy_se", "mcts_accuracy", "mcts_se", "kept"):
            if k in row:
                metrics[f"{k}_round{row['round']}"] = float(row[k])
    return policy, rows, metrics


def _describe(row: dict) -> str:
    out = f"round {row['round']}: greedy {row['greedy_accuracy']:.3f} +/- {row['greedy_se']:.3f}"
    if "mcts_accuracy" in row:
        out += f", eta-MCTS {row['mcts_accuracy']:.3f} +/- {row['mcts_se']:.3f}"
    return out
