"""``clip:demo``: Scaling (Down) CLIP's claims at toy scale, on generated coloured-shape image-caption pairs.

The data: a pool of `pool` pairs of which a fraction `noise` carry the caption of another class (the paper's
low-quality web pairs, Sec. 4.1); the clean subset is `clean` correctly captioned pairs of that pool. Every model
trains for the same steps x batch ("equal compute", paper Sec. 4) and is scored on the same held-out generated test
images, written to disk as an ImageFolder (zero-shot from prompt templates) and on 120 clean held-out pairs
(retrieval R@1/5/10).

1. quality vs quantity (paper Fig. 2/3): the ViT trained on the clean subset vs on the whole noisy pool, for each of
   `seeds`; verify: the mean zero-shot accuracy difference minus `margin_se` standard errors is > 0;
2. the four strategies (paper Sec. 5, Fig. 8): CLIP, SLIP, FLIP, CLIP+DataAug on the clean subset;
3. ViT vs ResNet (paper Sec. 4.2, Fig. 6) at two data sizes (`small` and `clean` clean pairs).
Finished trainings are skipped under --resume (stages/<name>/result.json); a killed one continues from its
checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paperloom import UserError
from paperloom.io import atomic_write_json, atomic_write_text
from paperloom.stats import mean_se

from .config import STRATEGIES, DemoConfig

PARTS = ("quality", "strategies", "architectures")


def demo(cfg: DemoConfig, ctx: Any) -> dict[str, float]:
    from .data import TensorPairs, image_folder
    from .evaluate import retrieval, zero_shot
    from .synthetic import make_pairs, write_image_folder
    from .tasks import train_clip
    from .tokenizer import train_tokenizer

    bad = sorted(set(cfg.parts) - set(PARTS)) + sorted(set(cfg.strategies) - set(STRATEGIES))
    if bad:
        raise UserError(f"parts/strategies: {bad[0]!r} is not valid; parts: {', '.join(PARTS)}; strategies: "
                        f"{', '.join(STRATEGIES)}")
    size = cfg.image_size
    pool = make_pairs(cfg.pool, size, cfg.noise, seed=ctx.seed)
    good = np.flatnonzero(pool["correct"])
    if len(good) < max(cfg.clean, cfg.small):
        raise UserError(f"clean = {cfg.clean} but the pool has only {len(good)} correct pairs (pool = {cfg.pool}, "
                        f"noise = {cfg.noise}); lower clean/small or raise pool")
    subsets = {"noisy": np.arange(cfg.pool), "clean": good[: cfg.clean], "small": good[: cfg.small]}
    test_dir = write_image_folder(ctx.out / "data" / "test", cfg.test_per_class, size, seed=ctx.seed + 1000)
    test_images, names = image_folder(str(test_dir), size)
    held = make_pairs(120, size, 0.0, seed=ctx.seed + 2000)
    test_pairs = TensorPairs(held["images"], held["texts"])
    tokenizer = train_tokenizer(pool["texts"], cfg.vocab_size)  # one tokenizer for every model
    ctx.log.info(f"pool {cfg.pool} pairs ({len(good)} correct, {cfg.pool - len(good)} wrong captions); clean subset "
                 f"{cfg.clean}, small {cfg.small}; test: {len(test_images)} images of {len(names)} classes; "
                 f"every training {cfg.trainer.max_steps} steps x batch {cfg.trainer.batch_size}")

    def run(name: str, subset: str, strategy: str = "clip", arch: str = "vit", seed: int = 0) -> dict:
        done = Path(ctx.out) / "stages" / name / "result.json"
        if done.is_file():
            ctx.log.info(f"{name}: already finished, skipped")
            return json.loads(done.read_text())
        stage_seed = 1000 * ctx.seed + seed
        stage = ctx.stage(name, seed=stage_seed)
        torch.manual_seed(stage_seed)
        ref, args = (cfg.model, cfg.model_args) if arch == "vit" else (cfg.resnet, cfg.resnet_args)
        model = stage.build(ref, tokenizer=tokenizer, **args)
        idx = subsets[subset]
        data = TensorPairs(pool["images"][idx], [pool["texts"][i] for i in idx])
        trained = train_clip(model, data, replace(cfg.strategy, name=strategy), cfg.optim, cfg.trainer, stage)
        model.to(ctx.device)
        result = {**zero_shot(model, test_images, None, names, cfg.templates),
                  **retrieval(model, test_pairs), "train_loss": trained["train_loss"], "steps": trained["steps"],
                  "pairs": len(idx)}
        atomic_write_json(done, result)
        ctx.log.info(f"{name}: {len(idx)} pairs, zero-shot top-1 {result['zero_shot_top1']:.3f}, image->text R@1 "
                     f"{result['image_to_text_r@1']:.3f}")
        return result

    metrics: dict[str, float] = {"pool": cfg.pool, "noise": cfg.noise, "clean": cfg.clean, "small": cfg.small,
                                 "steps": cfg.trainer.max_steps, "batch_size": cfg.trainer.batch_size,
                                 "margin_se": cfg.margin_se, "chance": 1 / len(names)}
    rows: dict[str, dict] = {}
    first = cfg.seeds[0] if cfg.seeds else 0
    if "quality" in cfg.parts:
        acc: dict[str, list[float]] = {"clean": [], "noisy": []}
        for seed in cfg.seeds:
            for subset in ("clean", "noisy"):
                r = rows[f"{subset}-s{seed}"] = run(f"{subset}-s{seed}", subset, seed=seed)
                acc[subset].append(r["zero_shot_top1"])
                metrics[f"{subset}_zero_shot_s{seed}"] = r["zero_shot_top1"]
                metrics[f"{subset}_i2t_r1_s{seed}"] = r["image_to_text_r@1"]
        for subset, values in acc.items():
            metrics[f"{subset}_zero_shot_mean"], metrics[f"{subset}_zero_shot_se"] = mean_se(values)
        diff = [c - n for c, n in zip(acc["clean"], acc["noisy"])]  # paired by seed (same init seed and test set)
        d_mean, d_se = mean_se(diff)
        metrics.update({"clean_minus_noisy_mean": d_mean, "clean_minus_noisy_se": d_se,
                        "clean_minus_noisy_lower": d_mean - cfg.margin_se * d_se})
    if "strategies" in cfg.parts:
        for strategy in cfg.strategies:
            name = f"clean-s{first}" if strategy == "clip" and f"clean-s{first}" in rows else f"strategy-{strategy}"
            r = rows[name] = run(name, "clean", strategy, seed=first)
            metrics[f"{strategy}_zero_shot"] = r["zero_shot_top1"]
            metrics[f"{strategy}_i2t_r1"] = r["image_to_text_r@1"]
            metrics[f"{strategy}_t2i_r1"] = r["text_to_image_r@1"]
    if "architectures" in cfg.parts:
        for arch in ("vit", "resnet"):
            for subset in ("small", "clean"):
                name = f"clean-s{first}" if (arch, subset) == ("vit", "clean") and f"clean-s{first}" in rows else \
                    f"{arch}-{subset}"
                r = rows[name] = run(name, subset, arch=arch, seed=first)
                metrics[f"{arch}_{subset}_zero_shot"] = r["zero_shot_top1"]
    write_report(metrics, rows, cfg, ctx)
    return metrics


def write_report(metrics: dict, rows: dict, cfg: DemoConfig, ctx: Any) -> None:
    from paperloom.tables import markdown_table

    keys = ["zero_shot_top1", "image_to_text_r@1", "image_to_text_r@5", "text_to_image_r@1", "text_to_image_r@5"]
    table = markdown_table([[name, r["pairs"], *(f"{100 * r[k]:.1f}" for k in keys)] for name, r in rows.items()],
                           ["training", "pairs", *keys])
    lines = [table, ""]
    if "clean_minus_noisy_mean" in metrics:
        m = metrics
        lines.append(f"zero-shot top-1 (mean +/- SE over seeds {cfg.seeds}): clean "
                     f"{100 * m['clean_zero_shot_mean']:.1f} +/- {100 * m['clean_zero_shot_se']:.1f}, noisy "
                     f"{100 * m['noisy_zero_shot_mean']:.1f} +/- "
                     f"{100 * m['noisy_zero_shot_se']:.1f}; clean - noisy {100 * m['clean_minus_noisy_mean']:.1f} +/- "
                     f"{100 * m['clean_minus_noisy_se']:.1f} (chance {100 * m['chance']:.1f})")
    atomic_write_text(ctx.out / "demo.md", "\n".join(lines) + "\n")
    ctx.log.info("values in %:\n" + "\n".join(lines) + f"\nplot: {ctx.out / 'demo.png'}")
    plot(metrics, cfg, ctx.out / "demo.png")


def plot(m: dict, cfg: DemoConfig, path: Path) -> None:
    """Three panels: clean vs noisy (per seed and mean +/- SE), the strategies, ViT vs ResNet by data size."""
    from paperloom.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    if "clean_zero_shot_mean" in m:
        for k, subset in enumerate(("clean", "noisy")):
            vals = [100 * m[f"{subset}_zero_shot_s{s}"] for s in cfg.seeds]
            ax.bar(k, 100 * m[f"{subset}_zero_shot_mean"], yerr=100 * m[f"{subset}_zero_shot_se"], capsize=5,
                   color=("tab:green", "tab:red")[k], alpha=0.7)
            ax.scatter([k] * len(vals), vals, color="black", zorder=3, s=12)
        ax.set_xticks([0, 1], [f"clean subset\n{cfg.clean} pairs", f"noisy pool\n{cfg.pool} pairs, "
                               f"{100 * cfg.noise:.0f}% wrong"])
    ax.axhline(100 * m["chance"], color="gray", linestyle=":", label="chance")
    ax.set(title="quality vs quantity (equal compute)", ylabel="zero-shot top-1 (%)")
    ax = axes[1]
    names = [s for s in STRATEGIES if f"{s}_zero_shot" in m]
    x = np.arange(len(names))
    ax.bar(x - 0.2, [100 * m[f"{s}_zero_shot"] for s in names], 0.4, label="zero-shot top-1")
    ax.bar(x + 0.2, [100 * m[f"{s}_i2t_r1"] for s in names], 0.4, label="image->text R@1")
    ax.set_xticks(x, [{"dataaug": "CLIP+DataAug"}.get(s, s.upper()) for s in names])
    ax.set(title=f"strategies on the clean subset ({cfg.clean} pairs)", ylabel="%")
    ax = axes[2]
    for arch, color in (("vit", "tab:blue"), ("resnet", "tab:orange")):
        if f"{arch}_small_zero_shot" in m:
            ax.plot([cfg.small, cfg.clean], [100 * m[f"{arch}_small_zero_shot"], 100 * m[f"{arch}_clean_zero_shot"]],
                    marker="o", color=color, label={"vit": "ViT-Ti/4", "resnet": "ResNet (tiny)"}[arch])
    ax.set(title="ViT vs ResNet by data size", xlabel="clean training pairs", ylabel="zero-shot top-1 (%)")
    if not names:
        axes[1].set_visible(False)
    if "vit_small_zero_shot" not in m and "resnet_small_zero_shot" not in m:
        axes[2].set_visible(False)
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
