"""The demo: DPO vs TR-DPO (soft, hard) on a synthetic task with a hidden gold reward, at equal steps.

1. train a BPE tokenizer on the synthetic text and SFT a tiny policy (`cfg.policy`, built by name) on chosen
   responses (trl SFTTrainer);
2. sample two responses per prompt from the SFT policy, label them by Bradley-Terry on the gold reward;
3. align a copy of the SFT policy with each method (same data order, seed and steps), measuring gold
   reward and KL(policy || SFT) a few times during training (the reward-vs-KL curve);
4. report the gold-reward win rate of each policy against the SFT policy, its reward and KL.

Each training is a stage of the run (``stages/<name>/``, metrics as ``<name>/<metric>``, one curve per method
in curves.png); each finished one is saved, so ``--resume`` continues after the last one.
"""

from __future__ import annotations

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
from paperloom.tables import markdown_table  # noqa: E402

from . import synthetic  # noqa: E402
from .config import TrainArgs  # noqa: E402
from .data import sft_rows, to_dataset  # noqa: E402
from .reference_update import fresh_copy, unpatch  # noqa: E402
from .trainer import align_trainer, sft_trainer  # noqa: E402
from .win_rate import compare, decode, gold_judge, policy_stats, sample  # noqa: E402

MAX_LENGTH = 64  # tokens of prompt + response in SFT and alignment (the demo's texts are far shorter)
METHODS = {  # name -> (loss, update)
    "dpo": ("dpo", "none"), "tr-dpo-soft": ("dpo", "soft"), "tr-dpo-hard": ("dpo", "hard"),
    "ipo": ("ipo", "none"), "tr-ipo-soft": ("ipo", "soft"), "tr-ipo-hard": ("ipo", "hard"),
    "tr-dpo-ema": ("dpo", "ema"), "tr-ipo-ema": ("ipo", "ema"),  # alpha after every step (not the paper's)
}


class Curve(TrainerCallback):
    """Gold reward and KL(policy || SFT) every `every` steps: the points of the reward-vs-KL curve."""

    def __init__(self, sft: Any, tok: Any, prompts: list[str], every: int, n: int, seed: int) -> None:
        self.sft, self.tok, self.prompts, self.every, self.n, self.seed = sft, tok, prompts, max(1, every), n, seed
        self.points: list[dict] = []

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            stats, _ = policy_stats(model, self.sft, self.tok, self.prompts, gold_judge(), n=self.n, seed=self.seed)
            self.points.append({"step": state.global_step, **stats})


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


def _align(cfg: Any, stage: Any, method: str, sft: Any, tok: Any, pairs: list[dict], eval_prompts: list[str]) -> dict:
    """One method from the SFT policy (a stage of the run): final win rate / reward / KL and the curve points."""
    loss, update = METHODS[method]
    targs = TrainArgs(steps=cfg.align_steps, batch_size=cfg.batch_size, lr=cfg.lr, max_length=MAX_LENGTH,
                      save_steps=10**9, log_steps=max(1, cfg.align_steps // 10))
    every = max(1, cfg.align_steps // max(1, cfg.curve_points))
    curve = Curve(sft, tok, eval_prompts[: max(16, cfg.eval_prompts // 3)], every, 2, stage.seed + 6)
    policy = fresh_copy(sft).train()
    trainer = align_trainer(policy, tok, to_dataset(pairs, "pairs"), loss=loss, beta=cfg.beta, update=update,
                            alpha=cfg.alpha, tau=cfg.tau, train=targs, out_dir=stage.checkpoint_dir,
                            device=stage.device, seed=stage.seed, callbacks=(MetricsToRun(stage.log_metrics), curve),
                            save_strategy="no")
    s = time.time()
    train(trainer)
    final = compare(policy, sft, sft, tok, eval_prompts, gold_judge(), cfg.eval_samples, seed=stage.seed + 5)
    return {**final, "seconds": time.time() - s, "curve": curve.points}


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
    eval_prompts = synthetic.prompts(cfg.eval_prompts, ctx.seed + 10_000)
    sft_stats, _ = policy_stats(sft, None, tok, eval_prompts, gold_judge(), n=cfg.eval_samples, seed=ctx.seed + 5)
    metrics: dict[str, float] = {"sft_reward": sft_stats["reward"]}
    curves: dict[str, list[dict]] = {}
    for method in cfg.methods:
        stage = ctx.stage(method)
        done = stage.out / "result.json"
        if done.is_file():
            res = read_json(done)
        else:
            res = _align(cfg, stage, method, sft, tok, pairs, eval_prompts)
            atomic_write_json(done, res)
        key = method.replace("-", "_")
        curves[method] = res["curve"] + [{"step": cfg.align_steps, "reward": res["reward"], "kl": res["kl"]}]
        metrics.update({f"{key}_win_rate": res["win_rate"], f"{key}_reward": res["reward"], f"{key}_kl": res["kl"]})
        ctx.log.info(f"{method}: win rate vs SFT {res['win_rate']:.3f}, gold reward {res['reward']:.3f}, "
                     f"KL {res['kl']:.2f}")
    tr = [m.replace("-", "_") for m in cfg.methods if m.startswith("tr-")]
    if tr:
        metrics["best_tr_win_rate"] = max(metrics[f"{m}_win_rate"] for m in tr)
    _plot(curves, sft_stats["reward"], ctx.out / "reward_vs_kl.png")
    ctx.log.info("\n" + table(cfg.methods, metrics))
    ctx.log.info(f"reward-vs-KL plot -> {ctx.out / 'reward_vs_kl.png'}  ({time.time() - t0:.0f} s)")
    return metrics


def table(methods: list[str], m: dict) -> str:
    rows = [["sft", "0.500", f"{m['sft_reward']:.3f}", "0.00"]]
    for method in methods:
        k = method.replace("-", "_")
        rows.append([method, f"{m[k + '_win_rate']:.3f}", f"{m[k + '_reward']:.3f}", f"{m[k + '_kl']:.2f}"])
    return markdown_table(rows, ["method", "win rate vs SFT", "gold reward", "KL(pi || SFT)"])


def _plot(curves: dict, sft_reward: float, png: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter([0.0], [sft_reward], color="black", label="SFT", zorder=3)
    for method, pts in curves.items():
        ax.plot([0.0] + [p["kl"] for p in pts], [sft_reward] + [p["reward"] for p in pts], marker="o", label=method)
    ax.set_xlabel("KL(policy || SFT) [nats, sampled]")
    ax.set_ylabel("gold reward")
    ax.set_title("TR-DPO demo: gold reward vs KL")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, png)
