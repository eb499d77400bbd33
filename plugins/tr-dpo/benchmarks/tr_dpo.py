"""TR-DPO vs plain DPO: step time and peak memory on the same tiny model and data, in one run.

Each configuration trains in a fresh child process (so its peak RSS is its own) with trl's DPOTrainer;
the reference update is trl's SyncRefModelCallback. Reported: median step time (including the sync,
timed by a callback that runs after it), mean step time, peak RSS (and peak CUDA memory on a GPU), the
cost of one sync measured directly, and the ratios to plain DPO. Configurations run round-robin `--rounds`
times and the fastest round counts (other processes' load then hits every configuration alike). The sync
costs one axpy over the parameters, so its overhead per step is sync_time / (tau * step_time).

    python plugins/tr-dpo/benchmarks/tr_dpo.py [--steps 150] [--rounds 2] [--layers 4] [--width 256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONFIGS = [  # name, update, alpha, tau
    ("dpo", "none", 0.6, 512),
    ("tr-dpo hard tau=512 (paper)", "hard", 1.0, 512),
    ("tr-dpo hard tau=64", "hard", 1.0, 64),
    ("tr-dpo ema alpha=0.6 (every step)", "ema", 0.6, 1),
]


def _child(args: dict, update: str, alpha: float, tau: int, queue: mp.Queue) -> None:
    from pathlib import Path

    import torch
    from datasets import Dataset
    from paperloom_lm.data import train_tokenizer
    from paperloom_tr_dpo import synthetic
    from paperloom_tr_dpo.config import TrainArgs
    from paperloom_tr_dpo.trainer import align_trainer
    from transformers import TrainerCallback
    from trl.trainer.callbacks import SyncRefModelCallback

    from paperloom.context import Run

    torch.set_num_threads(args["threads"])
    tok = train_tokenizer(synthetic.corpus(500), 512)
    torch.manual_seed(0)
    ctx = Run(out=Path("/tmp/tr-dpo-bench"), plugin="tr-dpo", task="benchmark")
    model = ctx.build("lm:gpt2", vocab_size=len(tok), n_layer=args["layers"], n_embd=args["width"], n_head=4,
                      n_positions=64)
    pairs = Dataset.from_list(synthetic.synthetic_pairs(2048, seed=1))
    train = TrainArgs(steps=args["steps"], batch_size=args["batch"], lr=1e-4, max_length=64, save_steps=10**9,
                      log_steps=10**6)
    trainer = align_trainer(model.to(args["device"]), tok, pairs, update=update, alpha=alpha, tau=tau, train=train,
                            out_dir="/tmp/tr-dpo-bench", device=args["device"], save_strategy="no")
    times: list[float] = []

    class Timer(TrainerCallback):  # added after SyncRefModelCallback: a step's time includes its sync
        def on_step_begin(self, *a, **k):
            if args["device"] == "cuda":
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            if args["device"] == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    trainer.add_callback(Timer())
    if args["device"] == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    steady = times[args["warmup"]:]
    ref = trainer.ref_model
    t = time.perf_counter()
    for _ in range(20):
        SyncRefModelCallback.sync_target_model(trainer.model, ref, 0.6)
    if args["device"] == "cuda":
        torch.cuda.synchronize()
    queue.put({"median_ms": 1e3 * statistics.median(steady), "mean_ms": 1e3 * statistics.fmean(steady),
               "sync_ms": 1e3 * (time.perf_counter() - t) / 20,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if args["device"] == "cuda" else 0.0,
               "params_m": sum(p.numel() for p in trainer.model.parameters()) / 1e6})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rounds", type=int, default=2, help="configs run round-robin this often; the fastest round counts")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="", help="also write the results to this file")
    args = vars(p.parse_args())
    ctx = mp.get_context("spawn")
    rows: dict[str, dict] = {}
    for r in range(args["rounds"]):  # round-robin, so load from other processes hits every config alike
        for name, update, alpha, tau in CONFIGS:
            q = ctx.Queue()
            proc = ctx.Process(target=_child, args=(args, update, alpha, tau, q))
            proc.start()
            res = q.get()
            proc.join()
            print(f"  round {r}: {name}: {res['median_ms']:.2f} ms/step", flush=True)
            if name not in rows or res["median_ms"] < rows[name]["median_ms"]:
                rows[name] = {**res, "peak_rss_mb": max(res["peak_rss_mb"], rows.get(name, {}).get("peak_rss_mb", 0))}
    base = rows["dpo"]
    print(f"\nTR-DPO vs DPO, GPT-2 {args['layers']}x{args['width']} ({base['params_m']:.2f}M params), batch "
          f"{args['batch']} pairs, {args['steps']} steps, best of {args['rounds']} rounds, {args['device']} "
          f"({platform.processor() or platform.machine()}, {args['threads']} thread(s))")
    print(f"one sync (axpy over all parameters): {base['sync_ms']:.3f} ms")
    print("| config | median ms/step | mean ms/step | step ratio | predicted sync overhead | peak RSS MB | RSS ratio |"
          + (" peak CUDA MB |" if args["device"] == "cuda" else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if args["device"] == "cuda" else ""))
    for (name, update, _, tau), r in zip(CONFIGS, rows.values()):
        over = 0.0 if update == "none" else r["sync_ms"] / (tau * base["median_ms"])
        print(f"| {name} | {r['median_ms']:.2f} | {r['mean_ms']:.2f} | {r['median_ms'] / base['median_ms']:.3f} | "
              f"{100 * over:.2f}% | {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / base['peak_rss_mb']:.3f} |"
              + (f" {r['peak_cuda_mb']:.0f} |" if args["device"] == "cuda" else ""))
    if args["json"]:
        with open(args["json"], "w") as f:
            json.dump({"args": args, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
