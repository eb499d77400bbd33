"""`megalodon:demo`: cross-chunk recall, Megalodon vs the same model with CEMA disabled.

Both models are built from `cfg.model` (default `megalodon:tiny`) through `ctx.build`, the ablation with
`use_cema=False`, and trained identically on generated sequences whose answer is a token several chunks
back (see `synthetic.py`). Attention is chunk-local, so only CEMA carries the answer across chunk borders:
Megalodon learns the task, the no-CEMA ablation stays near chance (1 / n_values); it only creeps up
slowly through the weak time-since-marker signal of the cumulative timestep-norm statistics (synthetic.py).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from paperloom import UserError
from paperloom.plots import pyplot, save_figure

from .synthetic import recall_batch, vocab_size


def _model(cfg: Any, use_cema: bool, ctx: Any) -> torch.nn.Module:
    """`cfg.model` at the demo's sizes; `use_cema=False` builds no CEMA at all (nothing left untrained)."""
    return ctx.build(cfg.model, vocab_size=vocab_size(cfg.n_values), hidden_size=cfg.hidden_size,
                     num_hidden_layers=cfg.num_hidden_layers, z_dim=cfg.hidden_size // 2,
                     value_dim=2 * cfg.hidden_size, ffn_hidden_size=2 * cfg.hidden_size, cema_ndim=cfg.cema_ndim,
                     chunk_size=cfg.chunk_size, norm_num_groups=cfg.norm_num_groups, use_cema=use_cema,
                     kernel_backend="torch")


@torch.no_grad()
def recall_accuracy(model: torch.nn.Module, batch: dict) -> float:
    model.eval()
    logits = model(batch["input_ids"], logits_to_keep=2).logits[:, 0]  # prediction at the query position
    model.train()
    return float((logits.argmax(-1) == batch["answer"]).float().mean())


def train_recall(cfg: Any, use_cema: bool, seed: int, ctx: Any, tag: str) -> tuple[float, list[tuple[int, float]]]:
    torch.manual_seed(seed)
    model = _model(cfg, use_cema, ctx)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 1), pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    held = recall_batch(cfg.eval_size, cfg.n_chunks, cfg.chunk_size, cfg.n_values,
                        torch.Generator().manual_seed(10_000 + seed), cfg.first_chunk)
    curve = []
    for step in ctx.progress(range(1, cfg.steps + 1), description=tag):
        batch = recall_batch(cfg.batch_size, cfg.n_chunks, cfg.chunk_size, cfg.n_values, gen, cfg.first_chunk)
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            acc = recall_accuracy(model, held)
            curve.append((step, acc))
            ctx.log_metrics({f"{tag}_recall_acc": acc, f"{tag}_loss": float(loss.detach())}, step=step)
    return recall_accuracy(model, held), curve


def plot(curves: dict[str, list[tuple[int, float]]], chance: float, path: Any, title: str) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot([s for s, _ in curve], [a for _, a in curve], marker="o", ms=3, label=label)
    ax.axhline(chance, color="gray", ls="--", label=f"chance ({chance:.3f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out recall accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def demo(cfg: Any, ctx: Any) -> dict[str, float]:
    if cfg.chunk_size < 2 or cfg.n_chunks < cfg.first_chunk + 3:
        raise UserError(f"config: n_chunks = {cfg.n_chunks} is too small for first_chunk = {cfg.first_chunk} and "
                        f"chunk_size = {cfg.chunk_size}; need n_chunks >= first_chunk + 3 and chunk_size >= 2")
    torch.set_num_threads(1)  # tiny model: one thread is fastest (and kind to a shared machine)
    length = cfg.n_chunks * cfg.chunk_size
    ctx.log.info(f"cross-chunk recall: {length} tokens = {cfg.n_chunks} chunks of {cfg.chunk_size}; the answer "
                 f"starts a chunk >= 1 chunk before the query; chance = 1/{cfg.n_values}")
    start = time.time()
    acc, curve = train_recall(cfg, True, ctx.seed, ctx, "megalodon")
    acc0, curve0 = train_recall(cfg, False, ctx.seed, ctx, "no_cema")
    chance = 1.0 / cfg.n_values
    ctx.log.info(f"recall accuracy: Megalodon {acc:.3f} | CEMA disabled {acc0:.3f} | chance {chance:.3f} "
                 f"| gap {acc - acc0:+.3f} ({time.time() - start:.0f}s)")
    near, far = 2 * cfg.chunk_size - 2, length - 2 - (cfg.first_chunk + 1) * cfg.chunk_size
    plot({"Megalodon": curve, "CEMA disabled": curve0}, chance, ctx.out / "recall.png",
         f"cross-chunk recall: answer {near}-{far} tokens before the query (chunk {cfg.chunk_size}, {length} tokens)")
    return {"recall_acc": acc, "no_cema_recall_acc": acc0, "chance_acc": chance, "recall_gap": acc - acc0,
            "seconds": time.time() - start}
