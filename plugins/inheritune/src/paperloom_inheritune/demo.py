"""The `demo` task: Inheritune's claim at small scale, on the embedded corpus, in a few CPU minutes.

1. Train a reference LM (`model`, 8 blocks by default) on the whole training split; save it as an HF folder.
2. On a small subset of that data, for each seed, train for the same steps
   (a) the inherited student: blocks 0..k-1 + embeddings/LM head read from the saved reference folder;
   (b) a same-size student at random init (the same `student` component, random_init=true).
3. Report every val loss (and the reference's, as the paper does) and plot the curves.
`verify` holds when the worst inherited student beats the best random one.

Every training is a stage of the run (`stages/<name>/`) with `paperloom_lm.pretrain.pretrain`; a finished
stage writes `result.json`, so `--resume` skips it and continues an interrupted one from its own checkpoint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from paperloom_lm.data import Blocks, text_data
from paperloom_lm.hf import save_hf
from paperloom_lm.pretrain import pretrain

from paperloom.io import atomic_write_json, read_jsonl
from paperloom.plots import pyplot, save_figure

from .inherit import count_params


def run_stage(ctx: Any, name: str, build: Callable[[], Any], train: Blocks, val: Blocks, optim: Any, trainer: Any,
              seed: int, after: Callable[[Any], Any] | None = None) -> dict:
    """Train one model as stage `name` (seeded by `seed`: init and data order) unless it already finished."""
    done = Path(ctx.out) / "stages" / name / "result.json"
    if done.is_file():
        ctx.log.info(f"{name}: already finished, skipped")
        return json.loads(done.read_text())
    stage = ctx.stage(name, seed=seed)  # each student seed gets its own data order, as its own run would
    torch.manual_seed(seed)
    model = build()
    result = pretrain(model, train, val, optim, trainer, stage)
    result.pop("is_global_zero")
    result["params"] = count_params(model)
    if after is not None:
        after(model)
    atomic_write_json(done, result)
    ctx.log.info(f"{name}: val loss {result['init_val_loss']:.3f} -> {result['val_loss']:.3f} in {result['steps']} "
                 "steps")
    return result


def curves(jsonl: Path) -> dict[str, list[tuple[int, float]]]:
    """Per-stage validation curves from metrics.jsonl (`<stage>/val_loss`), last value per step."""
    out: dict[str, dict[int, float]] = {}
    for row in read_jsonl(jsonl):
        for key, value in row.items():
            if key.endswith("/val_loss") and isinstance(value, (int, float)) and row.get("step") is not None:
                out.setdefault(key.rsplit("/", 1)[0], {})[int(row["step"])] = float(value)
    return {name: sorted(points.items()) for name, points in out.items()}


def plot(curve: dict, reference_loss: float, path: Path) -> None:
    plt = pyplot()
    fig, (ax_ref, ax) = plt.subplots(1, 2, figsize=(11, 4))
    if "reference" in curve:
        ax_ref.plot(*zip(*curve["reference"]), marker=".", color="black")
    ax_ref.set(title="reference (full data)", xlabel="step", ylabel="val loss")
    for name, points in sorted(curve.items()):
        if name != "reference":
            color = "tab:blue" if name.startswith("inherited") else "tab:orange"
            ax.plot(*zip(*points), color=color, alpha=0.8, label=name)
    ax.axhline(reference_loss, color="black", linestyle="--", label="reference (final)")
    ax.set(title="students on the subset (same steps)", xlabel="step", ylabel="val loss")
    ax.legend(fontsize=7)
    for a in (ax_ref, ax):
        a.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def demo(cfg: Any, ctx: Any) -> dict[str, float]:
    tokenizer, train, val = text_data(cfg.data, ctx.out, ctx.seed)
    subset = Blocks(train.rows[: max(1, math.ceil(len(train) * cfg.subset_fraction))], tokenizer)
    block = cfg.data.block_size
    ctx.log.info(f"data: reference {len(train)} blocks ({len(train) * block} tokens), students {len(subset)} blocks "
                 f"({len(subset) * block} tokens), val {len(val)} blocks")
    ref_dir = ctx.out / "reference"
    ref = run_stage(ctx, "reference", lambda: ctx.build(cfg.model, vocab_size=len(tokenizer), **cfg.model_args),
                    train, val, cfg.optim, cfg.trainer, ctx.seed, after=lambda m: save_hf(m, ref_dir, tokenizer))
    metrics: dict[str, float] = {"reference_val_loss": ref["val_loss"], "reference_params": ref["params"],
                                 "reference_tokens": ref["tokens"], "subset_tokens": len(subset) * block}
    spec = asdict(cfg.inherit)
    results: dict[str, list[float]] = {"inherited": [], "random": []}
    for seed in cfg.seeds:
        for kind in results:
            def build(seed: int = seed, random_init: bool = kind == "random") -> Any:
                return ctx.build(cfg.student, reference=str(ref_dir), random_init=random_init, seed=seed, **spec)

            res = run_stage(ctx, f"{kind}-s{seed}", build, subset, val, cfg.student_optim, cfg.student_trainer, seed)
            results[kind].append(res["val_loss"])
            metrics[f"{kind}_val_loss_s{seed}"] = res["val_loss"]
            metrics[f"{kind}_init_val_loss_s{seed}"] = res["init_val_loss"]
            metrics["student_params"], metrics["student_steps"] = res["params"], res["steps"]
    for kind, losses in results.items():
        metrics[f"{kind}_val_loss_mean"] = sum(losses) / len(losses)
    metrics["inherited_val_loss_max"] = max(results["inherited"])
    metrics["random_val_loss_min"] = min(results["random"])
    metrics["val_loss_gap_mean"] = metrics["random_val_loss_mean"] - metrics["inherited_val_loss_mean"]
    curve = curves(ctx.out / "metrics.jsonl")
    atomic_write_json(ctx.out / "demo_curves.json", {k: [list(p) for p in v] for k, v in curve.items()})
    plot(curve, ref["val_loss"], ctx.out / "demo_curves.png")
    rows = "\n".join(f"  seed {s}: inherited {metrics[f'inherited_val_loss_s{s}']:.4f}   "
                     f"random {metrics[f'random_val_loss_s{s}']:.4f}" for s in cfg.seeds)
    ctx.log.info(f"reference ({ref['params']} params) val loss {ref['val_loss']:.4f}\nstudents "
                 f"({metrics['student_params']} params, {metrics['student_steps']} steps on "
                 f"{len(subset) * block} tokens):\n{rows}\nplot: {ctx.out / 'demo_curves.png'}")
    return metrics
