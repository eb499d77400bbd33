"""The demo: AlphaLLM's claims at small scale, on generated arithmetic word problems, in a few CPU minutes.

1. `pretrain`: a tiny policy (`policy`, built by name; a character tokenizer) pre-trained on `train_problems`
   problems with plugins/lm's recipe for `pretrain_steps` steps, to a modest greedy accuracy;
2. `critics`: value / PRM / ORM heads on a copy of the policy, fitted on its rollouts' returns (Sec. 4.4);
3. on `test_problems` held-out problems (the same for every method): greedy, self-consistency, re-ranking
   and eta-MCTS at each rollout budget in `budgets` (the sampling baselines get exactly the options eta-MCTS
   used on each problem);
4. `improve.rounds` self-improvement rounds on fresh generated problems (imagination through the problem
   generator): eta-MCTS -> keep correct trajectories -> SFT -> refit critics; greedy / eta-MCTS accuracy per round.

The paper's claims are reported as paired differences on the same problems minus `margin_se` standard errors
(eta-MCTS - greedy, eta-MCTS - self-consistency, eta-MCTS - re-ranking at the largest budget; greedy after
improvement - before). At this scale they did not hold (README "Demo"); `core verify` checks what did.
Every training is a stage (`stages/<name>/`); the pre-trained policy and critics are saved, so --resume
continues after them.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from paperloom_lm.hf import load_causal_lm, save_hf

from paperloom import UserError
from paperloom.io import atomic_write_json

from . import figures, synthetic
from .critics import Critics
from .evaluation import compare, greedy_accuracy, mean_se
from .learning import pretrain_policy
from .model import load_critic, save_critic
from .options import Stepper
from .self_improve import fit_critics, run_rounds
from .tasks import budget_table


def demo(cfg: Any, ctx: Any) -> dict:
    if cfg.min_ops > cfg.max_ops:
        raise UserError(f"config: min_ops = {cfg.min_ops} > max_ops = {cfg.max_ops}; lower min_ops")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    tok = synthetic.problem_tokenizer()
    stepper = Stepper(tok)
    kw = {"min_ops": cfg.min_ops, "max_ops": cfg.max_ops, "max_operand": cfg.max_operand, "max_start": cfg.max_start}
    train = synthetic.arithmetic_problems(cfg.train_problems, ctx.seed, **kw)
    seen = {p["question"] for p in train}
    test = synthetic.arithmetic_problems(cfg.test_problems, ctx.seed + 1_000_003, exclude=seen, **kw)
    seen |= {p["question"] for p in test}
    s = cfg.improve
    fresh = synthetic.arithmetic_problems(s.problems * s.rounds + cfg.critics.problems, ctx.seed + 2_000_003,
                                          exclude=seen, **kw)  # imagination: new prompts from the generator

    policy = _policy(cfg, ctx, tok, train)
    ctx.log.info(f"policy ready ({time.time() - t0:.0f} s)")
    critic = _critic(cfg, ctx, policy, stepper, fresh[s.problems * s.rounds:])
    critics = Critics(critic, stepper, cfg.search.b_value, cfg.search.b_prm, cfg.search.b_orm, cfg.search.orm)
    metrics, per_budget = compare(ctx, policy, stepper, critics, test, cfg.budgets, cfg.search)
    ctx.log.info(f"search comparison on {len(test)} held-out problems ({time.time() - t0:.0f} s)\n"
                 + budget_table(metrics, cfg.budgets))
    top = max(cfg.budgets)
    rows_top = per_budget[top]
    greedy_before = [float(r["greedy"]) for r in rows_top]
    round0 = {"greedy_accuracy": mean_se(greedy_before)[0], "greedy_se": mean_se(greedy_before)[1],
              "mcts_accuracy": metrics[f"mcts_accuracy_b{top}"], "mcts_se": metrics[f"mcts_se_b{top}"]}
    search_cfg = _at_budget(cfg.search, top)
    improved, rows, round_metrics = run_rounds(ctx, policy, stepper, critic, fresh, test, search_cfg, s, cfg.critics,
                                               round0=round0)
    _, _, greedy_after = greedy_accuracy(ctx, improved, stepper, test)
    diff, se = mean_se([float(a) - b for a, b in zip(greedy_after, greedy_before)])
    k = cfg.margin_se
    metrics.update(round_metrics)
    metrics.update({
        "greedy_accuracy": metrics[f"greedy_accuracy_b{top}"], "sc_accuracy": metrics[f"sc_accuracy_b{top}"],
        "rerank_accuracy": metrics[f"rerank_accuracy_b{top}"], "mcts_accuracy": metrics[f"mcts_accuracy_b{top}"],
        "improved_greedy_accuracy": sum(greedy_after) / len(greedy_after),
        "improved_minus_greedy": diff, "improved_minus_greedy_se": se, "improved_minus_greedy_lower": diff - k * se,
        "mcts_minus_greedy_lower": metrics[f"mcts_minus_greedy_b{top}"] - k * metrics[f"mcts_minus_greedy_se_b{top}"],
        "mcts_minus_sc_lower": metrics[f"mcts_minus_sc_b{top}"] - k * metrics[f"mcts_minus_sc_se_b{top}"],
        "mcts_minus_rerank_lower": metrics[f"mcts_minus_rerank_b{top}"] - k * metrics[f"mcts_minus_rerank_se_b{top}"],
        "seconds": time.time() - t0,
    })
    figures.budget_curve(metrics, cfg.budgets, ctx.out / "accuracy_vs_budget.png",
                         f"AlphaLLM demo: {len(test)} held-out problems")
    figures.rounds_curve(rows, ctx.out / "rounds.png")
    atomic_write_json(ctx.out / "rounds.json", rows)
    ctx.log.info(f"greedy {metrics['greedy_accuracy']:.3f} -> {metrics['improved_greedy_accuracy']:.3f} after "
                 f"{s.rounds} round(s) (paired difference {diff:+.3f} +/- {se:.3f}); eta-MCTS "
                 f"{metrics['mcts_accuracy']:.3f} vs self-consistency {metrics['sc_accuracy']:.3f} at budget {top}; "
                 f"plots accuracy_vs_budget.png, rounds.png ({metrics['seconds']:.0f} s)")
    return metrics


def _at_budget(search: Any, budget: int) -> Any:
    import copy

    out = copy.deepcopy(search)
    out.rollouts = budget
    return out


def _policy(cfg: Any, ctx: Any, tok: Any, train: list[dict]) -> Any:
    folder = ctx.out / "policy"
    if (folder / "config.json").is_file():
        ctx.log.info(f"pre-trained policy found at {folder} (resume)")
        return load_causal_lm(folder).eval()
    torch.manual_seed(ctx.seed)
    model = ctx.build(cfg.policy, vocab_size=len(tok), **cfg.policy_args)
    from paperloom.schemas import OptimConfig, TrainerConfig

    optim = OptimConfig(lr=cfg.pretrain_lr, min_lr=cfg.pretrain_lr / 10, warmup_steps=min(30, cfg.pretrain_steps),
                        weight_decay=0.0)
    trainer = TrainerConfig(max_steps=cfg.pretrain_steps, batch_size=cfg.batch_size, val_every=10**6,
                            checkpoint_every=max(1, cfg.pretrain_steps // 4),
                            log_every=max(1, cfg.pretrain_steps // 10))
    res = pretrain_policy(model, tok, train, optim, trainer, ctx.stage("pretrain"))
    ctx.log.info(f"policy pre-trained: val loss {res['init_val_loss']:.3f} -> {res['val_loss']:.3f}")
    save_hf(model, folder, tok)
    return model.eval()


def _critic(cfg: Any, ctx: Any, policy: Any, stepper: Stepper, problems: list[dict]) -> Any:
    folder = ctx.out / "critic"
    if (folder / "critic.json").is_file():
        return load_critic(folder)
    critic, stats = fit_critics(ctx.stage("critics"), policy, stepper, problems, cfg.critics)
    ctx.log.info(f"critics fitted on {stats['critic_examples']} rollouts (policy's rollout accuracy "
                 f"{stats['rollout_accuracy']:.3f}, loss {stats['critic_loss']:.4f})")
    save_critic(critic, folder)
    return critic
