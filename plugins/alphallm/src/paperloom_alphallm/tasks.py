"""The tasks: synthesize, search, train-critics, evaluate, improve (the demo is in demo.py)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from paperloom import UserError
from paperloom.context import looks_like_path
from paperloom.io import atomic_write_json, atomic_write_text

from . import figures
from .critics import Critics
from .data import extract_answer
from .options import Stepper

# --------------------------------------------------------------------------- shared plumbing


def load_tokenizer_for(policy_ref: str, tokenizer: str = "") -> Any:
    """An explicit tokenizer folder, else the policy folder's own, else the character tokenizer."""
    from paperloom_lm.data import load_tokenizer

    from .synthetic import problem_tokenizer

    if tokenizer:
        return load_tokenizer(tokenizer)
    folder = Path(policy_ref).expanduser() if policy_ref and looks_like_path(policy_ref) else None
    if folder is not None and (folder / "tokenizer_config.json").is_file():
        return load_tokenizer(policy_ref)
    return problem_tokenizer()


def load_policy(ctx: Any, ref: str, args: dict, tok: Any) -> Any:
    """A folder loads as saved; a component is built with the tokenizer's vocabulary (plugins/lm's rule)."""
    from paperloom_lm.tasks import build_model

    return build_model(ctx, ref, args, tok).eval()


def problems_of(ctx: Any, ref: str, args: dict, n: int = 0, need_answers: bool = True) -> list[dict]:
    rows = list(ctx.build(ref, **args))
    if n:
        rows = rows[:n]
    if not rows:
        raise UserError(f"{ref}: no problems; check its arguments ({args})")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("question"), str):
            raise UserError(f"{ref}: item {i} has no string 'question'; a reasoning-problems dataset is expected")
        if need_answers and extract_answer(r.get("answer", "")) == "[invalid]":
            raise UserError(f"{ref}: problem {i} has no final '#### n' answer; this task needs answers to score")
    return rows


def load_critic_folder(path: str) -> Any:
    from .model import load_critic

    return load_critic(path) if path else None


def critics_for(critic: Any, stepper: Stepper, s: Any) -> Critics:
    return Critics(critic, stepper, s.b_value, s.b_prm, s.b_orm, s.orm)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _setup(cfg: Any, ctx: Any) -> tuple[Any, Stepper, Any]:
    import torch

    torch.set_num_threads(1)
    tok = load_tokenizer_for(cfg.policy, cfg.tokenizer)
    return tok, Stepper(tok), load_policy(ctx, cfg.policy, cfg.policy_args, tok)


# --------------------------------------------------------------------------- tasks


def synthesize(cfg: Any, ctx: Any) -> dict[str, float]:
    from .imagination import synthesize as imagine

    if cfg.generator:  # a verifiable domain's generator: problems with answers
        rows = problems_of(ctx, cfg.generator, {"n": cfg.n, **cfg.generator_args})
        counts = {"generated": float(len(rows))}
    else:
        tok, stepper, policy = _setup(cfg, ctx)
        seeds = problems_of(ctx, cfg.seeds, cfg.seeds_args, need_answers=False)
        critic = load_critic_folder(cfg.critic)
        critics = critics_for(critic, stepper, _DefaultWeights()) if critic is not None else None
        rows, counts = imagine(policy, stepper, seeds, cfg.n, cfg.shots, random.Random(ctx.seed), cfg.temperature,
                               critics, cfg.min_value, cfg.max_value, cfg.min_distance)
    write_jsonl(ctx.out / "problems.jsonl", rows)
    ctx.log.info(f"{len(rows)} problems -> {ctx.out / 'problems.jsonl'} ({counts})")
    return {"synthesized": float(len(rows)), **{k: float(v) for k, v in counts.items()}}


class _DefaultWeights:
    b_value, b_prm, b_orm, orm = 1.0, 1.0, 1.0, "none"


def search(cfg: Any, ctx: Any) -> dict[str, float]:
    from .self_improve import search_problems

    tok, stepper, policy = _setup(cfg, ctx)
    problems = problems_of(ctx, cfg.data, cfg.data_args, cfg.problems, need_answers=cfg.search.orm == "exact")
    fast = load_policy(ctx, cfg.rollout_policy, {}, tok) if cfg.rollout_policy else None
    critics = critics_for(load_critic_folder(cfg.critic), stepper, cfg.search)
    rows = search_problems(ctx, problems, policy, stepper, critics, cfg.search, fast)
    write_jsonl(ctx.out / "trajectories.jsonl", rows)
    metrics = {"problems": float(len(rows)), "rollouts": sum(r["rollouts"] for r in rows) / len(rows),
               "tokens": sum(r["tokens"] for r in rows) / len(rows), "nodes": sum(r["nodes"] for r in rows) / len(rows)}
    if all("correct" in r for r in rows):
        metrics["accuracy"] = sum(r["correct"] for r in rows) / len(rows)
    ctx.log.info(f"{len(rows)} trajectories -> {ctx.out / 'trajectories.jsonl'}; " +
                 ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return metrics


def train_critics(cfg: Any, ctx: Any) -> dict[str, float]:
    from .model import save_critic
    from .self_improve import fit_critics

    tok, stepper, policy = _setup(cfg, ctx)
    problems = problems_of(ctx, cfg.data, cfg.data_args, cfg.critics.problems)
    critic, stats = fit_critics(ctx, policy, stepper, problems, cfg.critics)
    save_critic(critic, ctx.out / "critic", tok)
    ctx.log.info(f"critic ({', '.join(critic.heads)}) -> {ctx.out / 'critic'}; rollout accuracy "
                 f"{stats['rollout_accuracy']:.3f}, final loss {stats['critic_loss']:.4f}")
    return stats


def evaluate(cfg: Any, ctx: Any) -> dict[str, float]:
    from .evaluation import compare

    tok, stepper, policy = _setup(cfg, ctx)
    problems = problems_of(ctx, cfg.data, cfg.data_args, cfg.problems)
    fast = load_policy(ctx, cfg.rollout_policy, {}, tok) if cfg.rollout_policy else None
    critics = critics_for(load_critic_folder(cfg.critic), stepper, cfg.search)
    metrics, _ = compare(ctx, policy, stepper, critics, problems, cfg.budgets, cfg.search, fast)
    figures.budget_curve(metrics, cfg.budgets, ctx.out / "accuracy_vs_budget.png")
    ctx.log.info("\n" + budget_table(metrics, cfg.budgets))
    return metrics


def improve(cfg: Any, ctx: Any) -> dict[str, float]:
    from paperloom_lm.hf import save_hf

    from .self_improve import run_rounds

    tok, stepper, policy = _setup(cfg, ctx)
    s = cfg.improve
    train = problems_of(ctx, cfg.data, cfg.data_args)
    if len(train) < s.problems * s.rounds:
        raise UserError(f"{cfg.data}: {len(train)} problems, fewer than improve.problems x improve.rounds = "
                        f"{s.problems * s.rounds}; add problems or lower them")
    held = problems_of(ctx, cfg.eval_data, cfg.eval_data_args)
    policy, rows, metrics = run_rounds(ctx, policy, stepper, load_critic_folder(cfg.critic), train, held, cfg.search,
                                       s, cfg.critics)
    save_hf(policy, ctx.out / "model", tok)
    figures.rounds_curve(rows, ctx.out / "rounds.png")
    atomic_write_json(ctx.out / "rounds.json", rows)
    return metrics


def budget_table(m: dict, budgets: list[int]) -> str:
    from paperloom.tables import markdown_table

    from .evaluation import METHODS

    rows = []
    for b in budgets:
        rows.append([str(b), f"{m[f'mcts_rollouts_b{b}']:.1f}"] +
                    [f"{m[f'{k}_accuracy_b{b}']:.3f} +/- {m[f'{k}_se_b{b}']:.3f}" for k in METHODS])
    return markdown_table(rows, ["budget", "used", *[figures.LABELS[k] for k in METHODS]])
