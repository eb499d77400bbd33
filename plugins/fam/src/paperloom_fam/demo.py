"""`fam:demo`: the toy passkey (synthetic.py) past BSWA's receptive field, BSWA vs TransformerFAM.

One tiny decoder (`cfg.base`, default lm:llama) is built per seed and wrapped twice through `fam:wrap`: as
BSWA (fam_len = 0) and as FAM (fam_len = cfg.fam_len); both start from the same weights and see the same
batches. Each step draws a length of 2 .. train_length/block blocks, so short sequences (within BSWA's
field: the key's block is still in memory) teach retrieval and long ones need a working memory. Accuracy
is measured on the same held-out sequences for every method at each eval length; "beyond" = the eval lengths
whose query is outside BSWA's receptive field (layers x mem x block tokens plus the open block).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch

from paperloom import UserError
from paperloom.checkpoint import Checkpoint
from paperloom.optim import adamw
from paperloom.plots import pyplot, save_figure
from paperloom.stats import mean_se

from .synthetic import passkey_batch, vocab_size

EVAL_SEED = 10_000  # held-out sequences: the same for every method and seed


def receptive_field(layers: int, mem: int, block: int) -> int:
    """BSWA's receptive field in tokens: the query's own block plus layers x mem blocks before it."""
    return (layers * mem + 1) * block


def beyond_field(length: int, layers: int, mem: int, block: int) -> bool:
    """The query (position length-2) is in a block more than layers x mem blocks after the key's block 0."""
    return (length - 2) // block > layers * mem


@torch.no_grad()
def passkey_accuracy(model: torch.nn.Module, batch: dict, chunk: int = 64) -> float:
    was = model.training
    model.eval()
    hits = 0
    for i in range(0, len(batch["answer"]), chunk):
        logits = model(input_ids=batch["input_ids"][i:i + chunk]).logits[:, -2]  # prediction after QUERY
        hits += int((logits.argmax(-1) == batch["answer"][i:i + chunk]).sum())
    model.train(was)
    return hits / len(batch["answer"])


def train_arm(cfg: Any, ctx: Any, fam_len: int, seed: int, held: dict[int, dict]) -> dict[int, float]:
    stage = ctx.stage(f"{'fam' if fam_len else 'bswa'}_seed{seed}", seed=seed)
    torch.manual_seed(seed)  # the same initial decoder for both methods
    model = stage.build("fam:wrap", base=cfg.base, base_args=cfg.base_args,
                        vocab_size=vocab_size(cfg.n_values, cfg.n_filler), block_size=cfg.block_size,
                        mem_segments=cfg.mem_segments, fam_len=fam_len)
    opt, sched = adamw(model, cfg.optim, cfg.steps)
    ckpt = Checkpoint(stage, "last")
    done = ckpt.restore(model, opt, sched)  # 0 unless --resume finds a checkpoint of this stage
    max_blocks = max(2, cfg.train_length // cfg.block_size)
    model.train()
    for step in ctx.progress(range(done + 1, cfg.steps + 1), description=stage.name):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)  # batch of step s: the same after --resume
        length = int(torch.randint(2, max_blocks + 1, (1,), generator=gen)) * cfg.block_size
        batch = passkey_batch(cfg.batch_size, length, cfg.n_values, cfg.n_filler, cfg.block_size, gen)
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == cfg.steps:
            stage.log_metrics({"loss": float(loss.detach())}, step=step)
            ckpt.save(step, model, opt, sched)
    return {n: passkey_accuracy(model, b) for n, b in held.items()}


def plot(acc: dict[str, dict[int, list[float]]], chance: float, field: int, train: tuple[int, int], path: Any,
         title: str) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 4))
    ax.axvspan(*train, color="gray", alpha=0.1, label=f"training lengths ({train[0]}-{train[1]})")
    for name, by_len in acc.items():
        lengths = sorted(by_len)
        means = [mean_se(by_len[n]) for n in lengths]
        ax.errorbar(lengths, [m for m, _ in means], yerr=[s for _, s in means], marker="o", capsize=3, label=name)
    ax.axhline(chance, color="gray", ls="--", label=f"chance ({chance:.3f})")
    ax.axvline(field, color="gray", ls=":", label=f"BSWA receptive field ({field} tokens)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length (tokens); key in the first block, query at the end")
    ax.set_ylabel("passkey accuracy (mean +/- SE over seeds)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def demo(cfg: Any, ctx: Any) -> dict[str, float]:
    if cfg.train_length < 2 * cfg.block_size:
        raise UserError(f"config: train_length = {cfg.train_length} must be >= 2 x block_size = "
                        f"{2 * cfg.block_size} (the key's block plus a query block)")
    if not cfg.seeds:
        raise UserError("config: seeds = [] holds no seed; give at least one, e.g. seeds=[0,1,2]")
    torch.set_num_threads(1)  # tiny model: one thread is fastest (and kind to a shared machine)
    layers = int(cfg.base_args.get("num_hidden_layers", cfg.base_args.get("n_layer", 2)))
    field = receptive_field(layers, cfg.mem_segments, cfg.block_size)
    beyond = [n for n in cfg.eval_lengths if beyond_field(n, layers, cfg.mem_segments, cfg.block_size)]
    if not beyond:
        raise UserError(f"config: no eval length is beyond BSWA's receptive field ({field} tokens + the key block); "
                        f"add a length >= {field + 2} to eval_lengths")
    shift = 1000 * ctx.seed  # --seed S: a new replication (seeds s + 1000 S, new held-out sequences)
    held = {n: passkey_batch(cfg.eval_size, n, cfg.n_values, cfg.n_filler, cfg.block_size,
                             torch.Generator().manual_seed(EVAL_SEED + shift + n)) for n in cfg.eval_lengths}
    chance = 1.0 / cfg.n_values
    ctx.log.info(f"passkey: {cfg.n_values} values (chance {chance:.3f}); BSWA receptive field {field} tokens "
                 f"(({layers} layers x {cfg.mem_segments} mem + 1) x {cfg.block_size}); beyond it: "
                 f"lengths {beyond}")
    start = time.time()
    acc: dict[str, dict[int, list[float]]] = {"BSWA": {n: [] for n in held}, "FAM": {n: [] for n in held}}
    for seed in (s + shift for s in cfg.seeds):
        for name, fam_len in (("BSWA", 0), ("FAM", cfg.fam_len)):
            res = train_arm(cfg, ctx, fam_len, seed, held)
            for n, a in res.items():
                acc[name][n].append(a)
            ctx.log.info(f"seed {seed} {name:>4}: " + "  ".join(f"L={n}: {a:.3f}" for n, a in res.items()))
    out: dict[str, float] = {"chance": chance, "receptive_field": field}
    per_seed = {name: [statistics.fmean(acc[name][n][i] for n in beyond) for i in range(len(cfg.seeds))]
                for name in acc}
    for name, key in (("BSWA", "bswa"), ("FAM", "fam")):
        for n in held:
            out[f"{key}_acc_len{n}"] = statistics.fmean(acc[name][n])
        out[f"{key}_acc_beyond"], out[f"{key}_acc_beyond_se"] = mean_se(per_seed[name])
    gap, gap_se = mean_se([f - b for f, b in zip(per_seed["FAM"], per_seed["BSWA"])])
    # binomial SE of one method's accuracy on the held-out set, at chance: the noise floor of "at chance"
    floor = math.sqrt(chance * (1 - chance) / (cfg.eval_size * len(beyond) * len(cfg.seeds)))
    out.update(gap_beyond=gap, gap_beyond_se=gap_se, gap_beyond_lower=gap - cfg.margin_se * max(gap_se, floor),
               chance_plus_margin=chance + cfg.margin_se * max(floor, out["bswa_acc_beyond_se"]),
               seconds=time.time() - start)
    ctx.log.info(f"beyond the receptive field: FAM {out['fam_acc_beyond']:.3f} +/- {out['fam_acc_beyond_se']:.3f} | "
                 f"BSWA {out['bswa_acc_beyond']:.3f} +/- {out['bswa_acc_beyond_se']:.3f} | chance {chance:.3f} | "
                 f"gap {gap:+.3f} +/- {gap_se:.3f} ({out['seconds']:.0f}s)")
    plot(acc, chance, field, (2 * cfg.block_size, max(2, cfg.train_length // cfg.block_size) * cfg.block_size),
         ctx.out / "passkey.png",
         f"toy passkey: block {cfg.block_size}, mem {cfg.mem_segments}, FAM {cfg.fam_len}, {len(cfg.seeds)} seeds")
    return out
