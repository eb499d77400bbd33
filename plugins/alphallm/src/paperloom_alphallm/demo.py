"""The demo: AlphaLLM's claims at small scale, on generated arithmetic word problems, in a few CPU minutes.

1. `pretrain`: a tiny policy (`policy`, built by name; numbers and words as tokens) pre-trained on
   `train_problems` problems with plugins/lm's module and schedule, keeping a moving average of its weights,
   until the averaged model's greedy accuracy on `dev_problems` reaches `pretrain_target` (at most
   `pretrain_steps`): a modest policy on every seed;
2. `critics`: value / PRM / ORM heads on a copy of the policy, fitted on its rollouts at the search's
   temperature, with returns from the exact checker (right answer by valid steps) (Sec. 4.4);
3. on `test_problems` held-out problems (the same for every method): greedy, self-consistency, re-ranking
   and eta-MCTS at each rollout budget in `budgets` (the sampling baselines get exactly the options eta-MCTS
   used on each problem; no method sees the answers); plus diagnostics scored afterwards by the checker: the
   critics' AUC, whether any leaf of the tree / any sample was right, how often eta-MCTS chose right then;
4. `improve.rounds` self-improvement rounds on fresh generated problems (imagination through the problem
   generator): eta-MCTS (exact ORM: these problems carry answers) -> keep a verified trajectory of the tree ->
   SFT; greedy / eta-MCTS accuracy per round.

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
    dev = synthetic.arithmetic_problems(cfg.dev_problems, ctx.seed + 3_000_003, exclude=seen, **kw)
    seen |= {p["question"] for p in dev}
    s = cfg.improve
    fresh = synthetic.arithmetic_problems(s.problems * s.rounds + cfg.critics.problems, ctx.seed + 2_000_003,
                                          exclude=seen, **kw)  # imagination: new prompts from the generator

    policy = _policy(cfg, ctx, tok, train, dev)
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
    if s.keep == "exact":  # the rounds' fresh problems carry answers: their search may use the exact checker as
        search_cfg.orm = "exact"  # ORM (training only; evaluate_policy switches it back for held-out problems)
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
        # measured properties (README "Demo"): the critics rank right above wrong solutions, and the tree holds a
        # right trajectory more often than greedy decoding is right
        "auc_score_lower": metrics[f"auc_score_b{top}"] - k * metrics[f"auc_score_se_b{top}"],
        "mcts_any_minus_greedy_lower": metrics[f"mcts_any_minus_greedy_b{top}"]
        - k * metrics[f"mcts_any_minus_greedy_se_b{top}"],
        "sc_any_minus_greedy_lower": metrics[f"sc_any_minus_greedy_b{top}"]
        - k * metrics[f"sc_any_minus_greedy_se_b{top}"],
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


def _policy(cfg: Any, ctx: Any, tok: Any, train: list[dict], dev: list[dict]) -> Any:
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
    res = pretrain_policy(model, tok, train, optim, trainer, ctx.stage("pretrain"), dev=dev,
                          target=cfg.pretrain_target, check_every=cfg.pretrain_check_every)
    curve = ", ".join(f"{s}: {a:.2f}" for s, a in res["dev_curve"])
    ctx.log.info(f"policy pre-trained for {res['steps']} steps: val loss {res['init_val_loss']:.3f} -> "
                 f"{res['val_loss']:.3f}; greedy accuracy on {len(dev)} dev problems by step: {curve}")
    atomic_write_json(folder.parent / "pretrain.json", {k: v for k, v in res.items() if k != "is_global_zero"})
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
