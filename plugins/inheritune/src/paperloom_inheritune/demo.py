"""The `demo` task: Inheritune's claim at small scale, on the embedded corpus, in a few CPU minutes.

The paper's claim (Sanyal et al. 2024, Sec. 5): a small model that inherits the first k blocks of a larger
reference and is trained on a small subset of the data *matches or beats the reference*, and *beats a
same-size model trained from scratch on the full data with the reference's budget*. The demo trains:

1. `reference`: `model` (8 blocks) from scratch on the whole training split (`optim`, `trainer`); saved as an
   HF folder. One model, seeded by the run's `--seed` (which also draws the train/val split).
2. For each of `seeds`, the arms in `arms` (by default the first three), each its own stage:
   * `inherited`: blocks 0..k-1 + embeddings/LM head of the saved reference, trained on the subset
     (`subset_fraction` of the reference's blocks) with `student_optim` / `student_trainer`;
   * `scratch_full`: the same k-block architecture at random init, trained on the *full* data with the
     reference's optimizer and token budget (the paper's from-scratch baseline);
   * `reference_continued`: the reference itself, trained further on the subset for the students' steps
     (a further comparison: the big model given the same extra data and steps);
   * `scratch_subset` (off by default): the same architecture at random init, trained like the inherited one
     (subset, same steps): what inheriting buys on the same data and compute.
3. Means and standard errors across seeds of every arm's final val loss, each arm's difference to the
   inherited arm with its standard error, and the bounds `core verify` compares: `<arm>_val_loss_upper/_lower` =
   mean +/- `margin_se` standard errors, `<arm>_minus_inherited_lower` = difference - `margin_se` SE.

Every training is a stage of the run (`stages/<name>/`) with `paperloom_lm.pretrain.pretrain`; a finished
stage writes `result.json`, so `--resume` skips it and continues an interrupted one from its own checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from paperloom_lm.data import Blocks, text_data
from paperloom_lm.hf import save_hf
from paperloom_lm.pretrain import pretrain

from paperloom import UserError
from paperloom.io import atomic_write_json, read_jsonl
from paperloom.plots import pyplot, save_figure
from paperloom.stats import mean_se

from .inherit import count_params

ARMS = ("inherited", "scratch_full", "reference_continued", "scratch_subset")
COLORS = {"reference": "black", "inherited": "tab:blue", "scratch_full": "tab:red", "scratch_subset": "tab:orange",
          "reference_continued": "tab:gray"}
LABELS = {"reference": "reference (8 blocks, full data)", "inherited": "inherited (k blocks, subset)",
          "scratch_full": "scratch (k blocks, full data, reference budget)",
          "scratch_subset": "scratch (k blocks, subset, student steps)",
          "reference_continued": "reference continued on subset"}


def stage_name(arm: str, seed: int) -> str:
    return f"{arm.replace('_', '-')}-s{seed}"


def arm_of(stage: str) -> str:
    """`scratch-full-s1` -> `scratch_full`; `reference` -> `reference`."""
    head = stage.rsplit("-s", 1)[0] if "-s" in stage and stage.rsplit("-s", 1)[1].isdigit() else stage
    return head.replace("-", "_")


def run_stage(ctx: Any, name: str, build: Callable[[], Any], train: Blocks, val: Blocks, optim: Any, trainer: Any,
              seed: int, after: Callable[[Any], Any] | None = None, token_budget: int = 0) -> dict:
    """Train one model as stage `name` (seeded by `seed`: init and data order) unless it already finished."""
    done = Path(ctx.out) / "stages" / name / "result.json"
    if done.is_file():
        ctx.log.info(f"{name}: already finished, skipped")
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    stage = ctx.stage(name, seed=seed)  # each seed gets its own data order, as its own run would
    torch.manual_seed(seed)
    model = build()
    result = pretrain(model, train, val, optim, copy.deepcopy(trainer), stage, token_budget=token_budget)
    result.pop("is_global_zero")
    result["params"] = count_params(model)
    if after is not None:
        after(model)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(done, result)
    ctx.log.info(f"{name}: val loss {result['init_val_loss']:.3f} -> {result['val_loss']:.3f} in {result['steps']} "
                 f"steps ({result['seconds']:.0f} s)")
    return result


def curves(jsonl: Path) -> dict[str, list[tuple[int, float]]]:
    """Per-stage validation curves from metrics.jsonl (`<stage>/val_loss`), last value per step."""
    out: dict[str, dict[int, float]] = {}
    for row in read_jsonl(jsonl):
        for key, value in row.items():
            if key.endswith("/val_loss") and isinstance(value, (int, float)) and row.get("step") is not None:
                out.setdefault(key.rsplit("/", 1)[0], {})[int(row["step"])] = float(value)
    return {name: sorted(points.items()) for name, points in out.items()}


def plot(curve: dict, metrics: dict, arms: list[str], path: Path) -> None:
    """Left: the full-data trainings (reference, scratch_full); middle: the subset trainings, with the full-data
    models' final losses as lines; right: every arm's final val loss, mean +/- standard error over seeds."""
    plt = pyplot()
    fig, (ax_full, ax_sub, ax_bar) = plt.subplots(1, 3, figsize=(16, 4.5))
    seen: set[str] = set()
    for name, points in sorted(curve.items()):
        arm = arm_of(name)
        ax = ax_full if arm in ("reference", "scratch_full") else ax_sub
        label = LABELS.get(arm, arm) if arm not in seen else None
        seen.add(arm)
        ax.plot(*zip(*points), color=COLORS.get(arm, "tab:green"), alpha=0.8, marker="." if arm == "reference" else "",
                label=label)
    ax_full.set(title="full data (reference budget)", xlabel="step", ylabel="val loss")
    ax_sub.axhline(metrics["reference_val_loss"], color="black", linestyle="--", label="reference (final)")
    if "scratch_full_val_loss_mean" in metrics:
        ax_sub.axhline(metrics["scratch_full_val_loss_mean"], color="tab:red", linestyle="--",
                       label="scratch full data (final mean)")
    ax_sub.set(title=f"on the {metrics['subset_tokens']:,}-token subset ({metrics['student_steps']} steps)",
               xlabel="step", ylabel="val loss")
    names = ["reference", *arms]
    means = [metrics["reference_val_loss"], *(metrics[f"{a}_val_loss_mean"] for a in arms)]
    ses = [0.0, *(metrics[f"{a}_val_loss_se"] for a in arms)]
    ax_bar.bar(range(len(names)), means, yerr=ses, capsize=4, color=[COLORS.get(n, "tab:green") for n in names])
    ax_bar.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    low, high = min(means) - 3 * max(ses) - 0.05, max(means) + 3 * max(ses) + 0.05
    ax_bar.set(title="final val loss (mean +/- SE over seeds)", ylabel="val loss", ylim=(low, high))
    for ax in (ax_full, ax_sub):
        ax.legend(fontsize=7)
    for ax in (ax_full, ax_sub, ax_bar):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def demo(cfg: Any, ctx: Any) -> dict[str, float]:
    unknown = sorted(set(cfg.arms) - set(ARMS))
    if unknown or "inherited" not in cfg.arms:
        raise UserError(f"arms = {cfg.arms}: expected a list of {', '.join(ARMS)} that includes inherited")
    arms = [a for a in ARMS if a in cfg.arms]
    tokenizer, train, val = text_data(cfg.data, ctx.out, ctx.seed)
    subset = Blocks(train.rows[: max(1, math.ceil(len(train) * cfg.subset_fraction))], tokenizer)
    block = cfg.data.block_size
    ctx.log.info(f"data: reference {len(train)} blocks ({len(train) * block} tokens), subset {len(subset)} blocks "
                 f"({len(subset) * block} tokens), val {len(val)} blocks")
    ref_dir = ctx.out / "reference"
    ref = run_stage(ctx, "reference", lambda: ctx.build(cfg.model, vocab_size=len(tokenizer), **cfg.model_args),
                    train, val, cfg.optim, cfg.trainer, ctx.seed, after=lambda m: save_hf(m, ref_dir, tokenizer))
    metrics: dict[str, float] = {
        "reference_val_loss": ref["val_loss"], "reference_init_val_loss": ref["init_val_loss"],
        "reference_params": ref["params"], "reference_steps": ref["steps"], "reference_tokens": ref["tokens"],
        "full_tokens": len(train) * block, "subset_tokens": len(subset) * block, "val_blocks": len(val),
        "seeds": len(cfg.seeds), "margin_se": cfg.margin_se, "match_tolerance": cfg.match_tolerance}
    spec = asdict(cfg.inherit)

    def student(seed: int, random_init: bool) -> Callable[[], Any]:
        return lambda: ctx.build(cfg.student, reference=str(ref_dir), random_init=random_init, seed=seed, **spec)

    def recipe(arm: str, seed: int) -> tuple[Callable[[], Any], Blocks, Any, Any, int]:
        """(build, data, optimizer, trainer, token budget) of one arm."""
        if arm == "inherited":
            return student(seed, False), subset, cfg.student_optim, cfg.student_trainer, 0
        if arm == "scratch_subset":
            return student(seed, True), subset, cfg.student_optim, cfg.student_trainer, 0
        if arm == "scratch_full":  # the reference's recipe and token budget, at the student's size
            return student(seed, True), train, cfg.optim, cfg.trainer, ref["tokens"]
        return (lambda: ctx.build(str(ref_dir))), subset, cfg.student_optim, cfg.student_trainer, 0

    results: dict[str, list[float]] = {arm: [] for arm in arms}
    for seed in cfg.seeds:
        for arm in arms:
            build, data, optim, trainer, budget = recipe(arm, seed)
            res = run_stage(ctx, stage_name(arm, seed), build, data, val, optim, trainer, seed, token_budget=budget)
            results[arm].append(res["val_loss"])
            metrics[f"{arm}_val_loss_s{seed}"] = res["val_loss"]
            metrics[f"{arm}_init_val_loss_s{seed}"] = res["init_val_loss"]
            metrics[f"{arm}_steps"], metrics[f"{arm}_tokens"] = res["steps"], res["tokens"]
            if arm == "inherited":
                metrics["student_params"], metrics["student_steps"] = res["params"], res["steps"]
    z = cfg.margin_se
    for arm, losses in results.items():
        mean, se = mean_se(losses)
        metrics.update({f"{arm}_val_loss_mean": mean, f"{arm}_val_loss_se": se, f"{arm}_val_loss_min": min(losses),
                        f"{arm}_val_loss_max": max(losses), f"{arm}_val_loss_upper": mean + z * se,
                        f"{arm}_val_loss_lower": mean - z * se})
    # The claims as bounds (z = margin_se): the reference is one model, so its bound is the inherited mean + z SE
    # against its loss (+ match_tolerance: "matches"); each other arm's difference to the inherited arm has the
    # standard error sqrt(se_arm^2 + se_inherited^2) (independent runs) and holds when mean - z SE > 0.
    metrics["reference_val_loss_plus_tolerance"] = ref["val_loss"] + cfg.match_tolerance
    inh_mean, inh_se = metrics["inherited_val_loss_mean"], metrics["inherited_val_loss_se"]
    metrics["reference_minus_inherited_mean"] = ref["val_loss"] - inh_mean
    metrics["reference_minus_inherited_lower"] = ref["val_loss"] - inh_mean - z * inh_se
    for arm in arms[1:]:
        diff = metrics[f"{arm}_val_loss_mean"] - inh_mean
        se = math.hypot(metrics[f"{arm}_val_loss_se"], inh_se)
        metrics.update({f"{arm}_minus_inherited_mean": diff, f"{arm}_minus_inherited_se": se,
                        f"{arm}_minus_inherited_lower": diff - z * se})
    curve = curves(ctx.out / "metrics.jsonl")
    atomic_write_json(ctx.out / "demo_curves.json", {k: [list(p) for p in v] for k, v in curve.items()})
    plot(curve, metrics, arms, ctx.out / "demo_curves.png")
    rows = "\n".join(f"  {arm:<20} {metrics[f'{arm}_val_loss_mean']:.4f} +/- {metrics[f'{arm}_val_loss_se']:.4f}  "
                     f"({', '.join(f'{v:.4f}' for v in results[arm])}; {metrics[f'{arm}_steps']} steps, "
                     f"{metrics[f'{arm}_tokens']:,} tokens)" for arm in arms)
    ctx.log.info(f"reference ({ref['params']} params, {ref['steps']} steps on {len(train) * block:,} tokens) val loss "
                 f"{ref['val_loss']:.4f}\nfinal val loss, mean +/- SE over seeds {list(cfg.seeds)} (students: "
                 f"{metrics['student_params']} params; subset {len(subset) * block:,} tokens):\n{rows}\n"
                 f"plot: {ctx.out / 'demo_curves.png'}")
    return metrics
