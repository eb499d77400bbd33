"""Inheritune benchmark: (1) training tokens the inherited vs the random-init student need to reach the
same validation loss on the demo setup; (2) wall time of `inherit` on a checkpoint of hundreds of MB
(safetensors slices of only the needed tensors) vs the naive full `from_pretrained` + slice.

    python plugins/inheritune/benchmarks/inheritune.py            # both parts (~10 CPU minutes on 2 cores)
    python plugins/inheritune/benchmarks/inheritune.py --quick    # smaller sizes, for a smoke check
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch


def first_step_at_or_below(curve: list[tuple[int, float]], target: float) -> float | None:
    """Step at which a validation curve first reaches `target` (linear interpolation between val points)."""
    prev = None
    for step, loss in curve:
        if loss <= target:
            if prev is None or prev[1] == loss:
                return float(step)
            (s0, l0) = prev
            return s0 + (step - s0) * (l0 - target) / (l0 - loss)
        prev = (step, loss)
    return None


def steps_to_loss(args: argparse.Namespace, work: Path) -> None:
    import yaml
    from paperloom_inheritune.config import DemoConfig
    from paperloom_inheritune.demo import curves
    from paperloom_lm.data import Blocks, text_data
    from paperloom_lm.pretrain import pretrain

    from paperloom.config import build
    from paperloom.context import Run
    from paperloom.runner import execute

    n = 40 if args.quick else 100
    overrides = ["seeds=[0]", "arms=[inherited,scratch_subset]", f"student_trainer.max_steps={n}",
                 "student_trainer.val_every=5"]
    if args.quick:
        overrides += ["trainer.max_steps=100", "data.max_chars=150000"]
    t0 = time.perf_counter()
    out, metrics = execute("inheritune:demo", overrides=overrides, out=work / "demo", device="cpu", plot=False)
    curve = curves(out / "metrics.jsonl")
    inherited, random_same = curve["inherited-s0"], curve["scratch-subset-s0"]
    # The random-init student again, on the same subset, for `long` x the steps (its own cosine schedule).
    cfg = build(DemoConfig, yaml.safe_load((out / "config.yaml").read_text()))
    cfg.data.tokenizer = str(out / "reference")
    tokenizer, train, val = text_data(cfg.data, None, 0)
    subset = Blocks(train.rows[: max(1, math.ceil(len(train) * cfg.subset_fraction))], tokenizer)
    long_steps = args.long * n
    cfg.student_trainer.max_steps, cfg.student_trainer.val_every = long_steps, max(5, long_steps // 40)
    ctx = Run(out=work / "long", plugin="inheritune", task="bench", seed=0)
    ctx.out.mkdir(parents=True, exist_ok=True)
    stage = ctx.stage("random-long")
    student = ctx.build(cfg.student, reference=str(out / "reference"), random_init=True, **asdict(cfg.inherit))
    pretrain(student, subset, val, cfg.student_optim, cfg.student_trainer, stage)
    random_long = sorted({int(r["step"]): r["val_loss"] for r in stage.curve if "val_loss" in r}.items())
    tokens_per_step = cfg.student_trainer.batch_size * cfg.data.block_size

    print(f"\n== steps to the same validation loss (demo setup, seed 0, {tokens_per_step} tokens/step, "
          f"{time.perf_counter() - t0:.0f} s)")
    print(f"reference val loss {metrics['reference_val_loss']:.4f}; students after {n} steps: inherited "
          f"{inherited[-1][1]:.4f}, random {random_same[-1][1]:.4f}; random after {long_steps} steps: "
          f"best {min(v for _, v in random_long):.4f}")
    rows = []
    for label, target in (("random's loss after the same steps", random_same[-1][1]),
                          (f"random's best loss in {long_steps} steps", min(v for _, v in random_long)),
                          ("inherited's loss after its steps", inherited[-1][1])):
        s_inh = first_step_at_or_below(inherited, target)
        s_rnd = first_step_at_or_below(random_long, target)
        rows.append((label, target, s_inh, s_rnd))
    print(f"{'target':<40} {'loss':>7} {'inherited steps':>16} {'random steps':>13} {'ratio (random/inherited)':>25}")
    for label, target, s_inh, s_rnd in rows:
        inh = "not reached" if s_inh is None else f"{s_inh:.0f}"
        rnd = f"> {long_steps}" if s_rnd is None else f"{s_rnd:.0f}"
        if s_inh is None:
            ratio = "-"
        elif s_rnd is None:
            ratio = f"> {long_steps / max(s_inh, 1):.1f}x"
        elif s_inh == 0:
            ratio = f"inf (inherited starts below; random needs {s_rnd * tokens_per_step:.0f} tokens)"
        else:
            ratio = f"{s_rnd / s_inh:.1f}x"
        print(f"{label:<40} {target:7.4f} {inh:>16} {rnd:>13} {ratio:>25}")


def inherit_speed(args: argparse.Namespace, work: Path) -> None:
    from paperloom_inheritune.config import InheritSpec
    from paperloom_inheritune.inherit import full_load_inherit, inherit_from_folder
    from transformers import GPT2Config, GPT2LMHeadModel

    layers, width, vocab = (8, 256, 8000) if args.quick else (24, 512, 32000)
    folder = work / "big"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_layer=layers, n_embd=width, n_head=8, n_positions=1024))
    model.save_pretrained(str(folder))
    del model
    size = (folder / "model.safetensors").stat().st_size
    print(f"\n== inherit on a GPT-2 checkpoint of {size / 1e6:.0f} MB ({layers} blocks x {width} wide, vocab {vocab}; "
          "file in the OS page cache after writing)")
    t = time.perf_counter()
    raw = (folder / "model.safetensors").read_bytes()
    read_all = time.perf_counter() - t
    del raw
    print(f"reading the whole file: {read_all:.3f} s ({size / 1e6 / read_all:.0f} MB/s)")
    print(f"{'k':>3} {'sliced s':>9} {'MB read':>8} {'MB/s':>7} {'full load s':>12} {'speed-up':>9}")
    for k in (layers // 2, max(1, layers // 6)):
        spec = InheritSpec(k=k)
        fast, naive = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            student, _, stats = inherit_from_folder(folder, spec, 0)
            fast.append(time.perf_counter() - t)
            del student
            t = time.perf_counter()
            student, _, _ = full_load_inherit(folder, spec, 0)
            naive.append(time.perf_counter() - t)
            del student
        f, nv = min(fast), min(naive)
        mb = stats["bytes_read"] / 1e6
        print(f"{k:>3} {f:9.3f} {mb:8.0f} {mb / f:7.0f} {nv:12.3f} {nv / f:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke check of this script)")
    parser.add_argument("--long", type=int, default=4, help="the long random-init run trains this many times the steps")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (the best is reported)")
    parser.add_argument("--only", choices=("tokens", "speed"), help="run one part")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "speed"):
            inherit_speed(args, Path(tmp))
        if args.only in (None, "tokens"):
            steps_to_loss(args, Path(tmp))


if __name__ == "__main__":
    main()
