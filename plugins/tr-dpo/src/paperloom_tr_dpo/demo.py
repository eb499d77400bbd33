"""The demo and the frontier protocol: DPO vs TR-DPO (soft, hard) on a synthetic task with a hidden gold reward.

1. train a BPE tokenizer on the synthetic text and SFT a tiny policy (`cfg.policy`, built by name) on chosen
   responses (trl SFTTrainer);
2. sample two responses per prompt from the SFT policy, label them by Bradley-Terry on the gold reward;
3. for each alignment seed, align a copy of the SFT policy with each method (the same seed gives every method
   the same data order), evaluating gold reward and KL(policy || SFT) at `curve_points` checkpoints on ONE
   fixed evaluation set with ONE sampling seed (the same samples' randomness for every method and checkpoint);
4. report per method the mean and standard error over seeds of the final reward / KL / win rate vs SFT, the
   over-optimisation drop (peak reward - final reward), and the reward-vs-KL frontier: the best gold reward
   among a run's checkpoints with KL <= K, for each budget K (the paper's "higher reward at matched KL").

`tr-dpo:demo` runs 3 seeds x 300 steps (minutes); `tr-dpo:frontier` the same protocol at 5 seeds x 600 steps.
Each training is a stage of the run (``stages/<method>-s<k>/``); a finished one is kept, so ``--resume``
continues after the last one.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from paperloom_lm.data import load_tokenizer, train_tokenizer  # noqa: E402
from paperloom_lm.hf import MetricsToRun, save_hf, train  # noqa: E402
from paperloom_lm.tasks import build_model  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from paperloom import UserError  # noqa: E402
from paperloom.io import atomic_write_json, read_json  # noqa: E402
from paperloom.plots import pyplot, save_figure  # noqa: E402
from paperloom.stats import mean_se, paired_difference  # noqa: E402
from paperloom.tables import markdown_table  # noqa: E402

from . import synthetic  # noqa: E402
from .config import TrainArgs  # noqa: E402
from .data import sft_rows, to_dataset  # noqa: E402
from .reference_update import fresh_copy, unpatch  # noqa: E402
from .trainer import align_trainer, sft_trainer  # noqa: E402
from .win_rate import decode, gold_judge, policy_stats, sample, win_rate  # noqa: E402

MAX_LENGTH = 64  # tokens of prompt + response in SFT and alignment (the demo's texts are far shorter)
METHODS = {  # name -> (loss, update)
    "dpo": ("dpo", "none"), "tr-dpo-soft": ("dpo", "soft"), "tr-dpo-hard": ("dpo", "hard"),
    "ipo": ("ipo", "none"), "tr-ipo-soft": ("ipo", "soft"), "tr-ipo-hard": ("ipo", "hard"),
    "tr-dpo-ema": ("dpo", "ema"), "tr-ipo-ema": ("ipo", "ema"),  # alpha after every step (not the paper's)
}


class Curve(TrainerCallback):
    """Every `every` steps: gold reward, KL(policy || SFT) and win rate vs SFT on the fixed evaluation set."""

    def __init__(self, evaluate: Any, every: int) -> None:
        self.evaluate, self.every = evaluate, max(1, every)
        self.points: list[dict] = []

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            self.points.append({"step": state.global_step, **self.evaluate(model)})


def _sft(cfg: Any, ctx: Any, tok: Any, folder: Path) -> Any:
    if (folder / "config.json").is_file():
        ctx.log.info(f"SFT policy found at {folder} (resume)")
        return ctx.build(str(folder))
    torch.manual_seed(ctx.seed)
    model = build_model(ctx, cfg.policy, cfg.policy_args, tok)
    rows = sft_rows(to_dataset(synthetic.synthetic_pairs(cfg.sft_rows, ctx.seed), "synthetic"))
    targs = TrainArgs(steps=cfg.sft_steps, batch_size=32, lr=cfg.sft_lr, scheduler="cosine", warmup_steps=10,
                      max_length=MAX_LENGTH, save_steps=10**9, log_steps=max(1, cfg.sft_steps // 10))
    stage = ctx.stage("sft")
    trainer = sft_trainer(model, tok, rows, train=targs, out_dir=stage.checkpoint_dir, device=ctx.device,
                          seed=ctx.seed, callbacks=(MetricsToRun(stage.log_metrics),), save_strategy="no")
    trainer.train()
    save_hf(model, folder, tok)
    return unpatch(model)


def _pairs(cfg: Any, ctx: Any, sft: Any, tok: Any) -> list[dict]:
    path = ctx.out / "pairs.json"
    if path.is_file():
        return read_json(path)
    prompts = synthetic.prompts(cfg.pair_prompts, ctx.seed + 1)
    comps = sample(sft, tok, prompts, n=2, max_new_tokens=12, seed=ctx.seed + 2)
    first = decode(tok, [c[0] for c in comps])
    second = decode(tok, [c[1] for c in comps])
    rows = [r for r in synthetic.label_pairs(prompts, first, second, ctx.seed + 3, cfg.bt_scale)
            if r["chosen"].strip() and r["rejected"].strip() and r["chosen"] != r["rejected"]]
    atomic_write_json(path, rows)
    return rows


def _align(cfg: Any, stage: Any, method: str, sft: Any, tok: Any, pairs: list[dict], evaluate: Any) -> dict:
    """One method from the SFT policy (a stage of the run): its checkpoints' reward / KL / win rate."""
    loss, update = METHODS[method]
    targs = TrainArgs(steps=cfg.align_steps, batch_size=cfg.batch_size, lr=cfg.lr, max_length=MAX_LENGTH,
                      save_steps=10**9, log_steps=max(1, cfg.align_steps // 10))
    curve = Curve(evaluate, cfg.align_steps // max(1, cfg.curve_points))
    policy = fresh_copy(sft).train()
    trainer = align_trainer(policy, tok, to_dataset(pairs, "pairs"), loss=loss, beta=cfg.beta, update=update,
                            alpha=cfg.alpha, tau=cfg.tau, train=targs, out_dir=stage.checkpoint_dir,
                            device=stage.device, seed=stage.seed, callbacks=(MetricsToRun(stage.log_metrics), curve),
                            save_strategy="no")
    s = time.time()
    train(trainer)
    if not curve.points or curve.points[-1]["step"] != cfg.align_steps:  # the final policy is always a point
        curve.points.append({"step": cfg.align_steps, **evaluate(policy)})
    return {"curve": curve.points, "seconds": time.time() - s}


def stage_name(method: str, seed: int) -> str:
    return f"{method}-s{seed}"


def budget_key(kl: float) -> str:
    """Metric-name form of a KL budget: 0.5 -> 'kl0p5', 2.0 -> 'kl2'."""
    return "kl" + f"{kl:g}".replace(".", "p")


def frontier(points: list[dict], budget: float) -> float:
    """Best gold reward among a run's checkpoints (the SFT start included) with KL <= budget."""
    return max(p["reward"] for p in points if p["kl"] <= budget)


def summarize(cfg: Any, runs: dict[str, list[list[dict]]], sft: dict) -> dict[str, float]:
    """Means and standard errors over seeds; TR-vs-DPO differences are paired by seed (same data order)."""
    z = cfg.margin_se
    m: dict[str, float] = {"sft_reward": sft["reward"], "sft_reward_se": sft["reward_se"], "seeds": cfg.seeds,
                           "margin_se": z, "eval_samples_total": cfg.eval_prompts * cfg.eval_samples}
    start = {"step": 0, "reward": sft["reward"], "kl": 0.0, "win_rate": 0.5}
    per_seed: dict[str, dict[str, list[float]]] = {}
    for method, curves in runs.items():
        key = method.replace("-", "_")
        vals: dict[str, list[float]] = {
            "reward": [c[-1]["reward"] for c in curves], "kl": [c[-1]["kl"] for c in curves],
            "win_rate": [c[-1]["win_rate"] for c in curves],
            "peak_reward": [max(p["reward"] for p in c) for c in curves],
        }
        vals["drop"] = [p - f for p, f in zip(vals["peak_reward"], vals["reward"])]
        for kl in cfg.kl_budgets:
            vals[f"frontier_{budget_key(kl)}"] = [frontier([start, *c], kl) for c in curves]
        for name, v in vals.items():
            m[f"{key}_{name}"], m[f"{key}_{name}_se"] = mean_se(v)
        per_seed[key] = vals
        # The final reward over SFT: the seeds' spread and the SFT estimate's own sampling error both count.
        diff, se = m[f"{key}_reward"] - sft["reward"], math.hypot(m[f"{key}_reward_se"], sft["reward_se"])
        m[f"{key}_minus_sft_reward"], m[f"{key}_minus_sft_reward_lower"] = diff, diff - z * se
    if "dpo" in per_seed:
        for key in [k for k in per_seed if k.startswith("tr_")]:
            for name in [f"frontier_{budget_key(kl)}" for kl in cfg.kl_budgets] + ["drop", "kl"]:
                d, se = paired_difference(per_seed[key][name], per_seed["dpo"][name])
                m[f"{key}_minus_dpo_{name}"], m[f"{key}_minus_dpo_{name}_se"] = d, se
                m[f"{key}_minus_dpo_{name}_lower"] = d - z * se
    return m


def demo(cfg: Any, ctx: Any) -> dict:
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown:
        raise UserError(f"config: methods has {unknown}; choose from {', '.join(METHODS)}")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    tok_dir = ctx.out / "tokenizer"
    tok = load_tokenizer(tok_dir) if (tok_dir / "tokenizer.json").is_file() else train_tokenizer(
        synthetic.corpus(2000, ctx.seed), cfg.vocab_size, tok_dir)
    sft = _sft(cfg, ctx, tok, ctx.out / "sft")
    sft.eval()
    pairs = _pairs(cfg, ctx, sft, tok)
    ctx.log.info(f"{len(pairs)} on-policy pairs labelled by the gold reward (Bradley-Terry)")
    # One evaluation set and one sampling seed for every method, seed and checkpoint (and for SFT).
    eval_prompts, eval_seed, judge = synthetic.prompts(cfg.eval_prompts, ctx.seed + 10_000), ctx.seed + 5, gold_judge()
    sft_stats, sft_rewards = policy_stats(sft, None, tok, eval_prompts, judge, n=cfg.eval_samples, seed=eval_seed)
    sft_stats["reward_se"] = prompt_se(sft_rewards, cfg.eval_samples)

    def evaluate(policy: Any) -> dict:
        stats, rewards = policy_stats(policy, sft, tok, eval_prompts, judge, n=cfg.eval_samples, seed=eval_seed)
        return {"reward": stats["reward"], "kl": stats["kl"], "win_rate": win_rate(rewards, sft_rewards),
                "length": stats["length"]}

    runs: dict[str, list[list[dict]]] = {m: [] for m in cfg.methods}
    jobs = [(k, method) for k in range(cfg.seeds) for method in cfg.methods]
    for k, method in ctx.progress(jobs, description="aligning"):
        stage = ctx.stage(stage_name(method, k), seed=ctx.seed + k)  # same seed: the same data order per method
        done = stage.out / "result.json"
        if done.is_file():
            res = read_json(done)
        else:
            res = _align(cfg, stage, method, sft, tok, pairs, evaluate)
            atomic_write_json(done, res)
        runs[method].append(res["curve"])
        last = res["curve"][-1]
        ctx.log.info(f"{method} seed {k}: reward {last['reward']:.3f}, KL {last['kl']:.2f}, "
                     f"win rate vs SFT {last['win_rate']:.3f}")
    metrics = summarize(cfg, runs, sft_stats)
    plot(runs, sft_stats["reward"], cfg, ctx.out / "reward_vs_kl.png")
    ctx.log.info("\n" + table(cfg, metrics))
    ctx.log.info(f"reward-vs-KL plot -> {ctx.out / 'reward_vs_kl.png'}  ({time.time() - t0:.0f} s)")
    return metrics


def prompt_se(rewards: list[float], samples: int) -> float:
    """SE of a mean reward whose samples come `samples` per prompt: prompts are the independent units."""
    per_prompt = [sum(rewards[i: i + samples]) / samples for i in range(0, len(rewards), samples)]
    return mean_se(per_prompt)[1]


def table(cfg: Any, m: dict) -> str:
    budgets = [budget_key(kl) for kl in cfg.kl_budgets]
    rows = [["sft", "0.500", f"{m['sft_reward']:.3f} +- {m['sft_reward_se']:.3f}", "0.00", "-",
             *[f"{m['sft_reward']:.3f}"] * len(budgets)]]
    for method in cfg.methods:
        k = method.replace("-", "_")
        rows.append([method, f"{m[k + '_win_rate']:.3f}", f"{m[k + '_reward']:.3f} +- {m[k + '_reward_se']:.3f}",
                     f"{m[k + '_kl']:.2f} +- {m[k + '_kl_se']:.2f}", f"{m[k + '_drop']:.3f} +- {m[k + '_drop_se']:.3f}",
                     *[f"{m[f'{k}_frontier_{b}']:.3f} +- {m[f'{k}_frontier_{b}_se']:.3f}" for b in budgets]])
    head = ["method", "win rate vs SFT", "final gold reward", "final KL", "peak - final",
            *[f"best reward, KL <= {kl:g}" for kl in cfg.kl_budgets]]
    return markdown_table(rows, head) + f"\n(mean +- SE over {cfg.seeds} alignment seeds)"


def plot(runs: dict[str, list[list[dict]]], sft_reward: float, cfg: Any, png: Path) -> None:
    """Three panels: every checkpoint's (KL, reward); reward over steps (over-optimisation); the frontier."""
    plt = pyplot()
    fig, (ax_kl, ax_step, ax_front) = plt.subplots(1, 3, figsize=(15, 4.2))
    start = {"step": 0, "reward": sft_reward, "kl": 0.0}
    for i, (method, curves) in enumerate(runs.items()):
        color = f"C{i}"
        for c in curves:
            ax_kl.plot([0.0] + [p["kl"] for p in c], [sft_reward] + [p["reward"] for p in c], color=color,
                       alpha=0.35, marker=".")
        steps = [p["step"] for p in curves[0]]
        stats = [mean_se([c[j]["reward"] for c in curves]) for j in range(len(steps))]
        mean = [sft_reward] + [s[0] for s in stats]
        se = [0.0] + [s[1] for s in stats]
        ax_step.errorbar([0, *steps], mean, yerr=se, color=color, marker="o", capsize=3, label=method)
        front = [mean_se([frontier([start, *c], kl) for c in curves]) for kl in cfg.kl_budgets]
        ax_front.errorbar(cfg.kl_budgets, [f[0] for f in front], yerr=[f[1] for f in front], color=color,
                          marker="o", capsize=3, label=method)
        ax_kl.plot([], [], color=color, label=method)
    ax_kl.scatter([0.0], [sft_reward], color="black", zorder=3, label="SFT")
    ax_kl.set(xlabel="KL(policy || SFT) [nats]", ylabel="gold reward", title="every checkpoint of every seed")
    ax_step.axhline(sft_reward, color="black", lw=0.8, ls="--")
    ax_step.set(xlabel="alignment step", ylabel="gold reward", title="over-optimisation (mean +- SE)")
    ax_front.axhline(sft_reward, color="black", lw=0.8, ls="--")
    ax_front.set(xscale="log", xlabel="KL budget K [nats]", ylabel="best gold reward with KL <= K",
                 title="reward-vs-KL frontier (mean +- SE)")
    for ax in (ax_kl, ax_step, ax_front):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, png)
