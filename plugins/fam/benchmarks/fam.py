"""TransformerFAM streaming vs the same decoder with full causal attention: peak memory and time per token vs
input length, in one run.

    python plugins/fam/benchmarks/fam.py                          # CPU: 4K, 8K, 16K, 32K, 64K tokens
    python plugins/fam/benchmarks/fam.py --lengths 4096 8192 16384

The decoder is a Llama (2 layers, width 128, 4 heads, vocab 2048, random init); FAM runs with the paper's
settings (block 1024, 3 memory segments, FAM length 64) and streams the input one block per call through its
cache (the state: memory-segment K/V + FAM per layer), so its memory stays flat and its cost per token is
constant; full attention processes the whole input in one call (sdpa), its cost per token grows with length.
Only the last position's logits are computed in both. Each (method, length) runs in a fresh process; peak
memory = the peak resident-set growth above the process's size before the call (sampled every 2 ms).
Targets (issue 15): FAM peak memory at the longest / shortest length <= 1.1, FAM time per token within 20%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time

CFG = dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4, intermediate_size=512, vocab_size=2048,
           max_position_embeddings=1 << 20)
FAM = dict(block_size=1024, mem_segments=3, fam_len=64)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one(method: str, length: int) -> dict:
    """Run one measurement in this process: {'seconds', 'peak_mib'}."""
    import torch
    from paperloom_fam.model import FAMForCausalLM
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(**CFG)).eval()
    model = FAMForCausalLM.wrap(base, **FAM).eval() if method == "fam" else base
    ids = torch.randint(0, CFG["vocab_size"], (1, length))
    with torch.no_grad():  # warm-up (allocator, kernels) on one block
        model(ids[:, :FAM["block_size"]], logits_to_keep=1)
    top, running = [_rss()], [True]
    start_rss = top[0]

    def sample() -> None:
        while running[0]:
            top[0] = max(top[0], _rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    with torch.no_grad():
        if method == "fam":
            cache, per_block = None, []
            for a in range(0, length, FAM["block_size"]):  # stream one block per call: constant state
                tb = time.perf_counter()
                out = model(ids[:, a:a + FAM["block_size"]], cache=cache, use_cache=True, logits_to_keep=1)
                cache = out.cache
                per_block.append(time.perf_counter() - tb)
        else:
            out = model(ids, logits_to_keep=1)
    seconds = time.perf_counter() - t0
    running[0] = False
    thread.join()
    top[0] = max(top[0], _rss())
    res = {"seconds": seconds, "peak_mib": (top[0] - start_rss) / 2**20, "rss_mib": top[0] / 2**20}
    if method == "fam":  # median per-block time once the memory segments are full (robust to load spikes)
        steady = sorted(per_block[FAM["mem_segments"]:] or per_block)
        res["steady_us_per_token"] = 1e6 * steady[len(steady) // 2] / FAM["block_size"]
    return res


def cell(r: dict | None, key: str, n: int, scale: float = 1.0) -> str:
    return f"{scale * r[key] / (n if key == 'seconds' else 1):.1f}" if r else "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192, 16384, 32768, 65536])
    p.add_argument("--methods", nargs="+", default=["fam", "full"], choices=["fam", "full"])
    p.add_argument("--one", nargs=2, metavar=("METHOD", "LENGTH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}  # freed buffers leave RSS
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; 1 thread; "
          f"Llama {CFG['num_hidden_layers']} layers x {CFG['hidden_size']}; FAM {FAM}")
    res: dict = {}
    for n in args.lengths:
        for m in args.methods:
            out = subprocess.run([sys.executable, __file__, "--one", m, str(n)], capture_output=True, text=True,
                                 env=env, check=True)
            res[m, n] = json.loads(out.stdout.strip().splitlines()[-1])
            r = res[m, n]
            steady = f"  steady {r['steady_us_per_token']:.1f} us/token" if "steady_us_per_token" in r else ""
            print(f"  {m:>4} {n:>6} tokens: {r['seconds']:8.2f} s  {1e6 * r['seconds'] / n:8.1f} us/token  "
                  f"peak +{r['peak_mib']:8.1f} MiB (RSS {r['rss_mib']:.0f} MiB){steady}", flush=True)
    print("\n| tokens | FAM us/token | full us/token | full / FAM time | FAM peak MiB | full peak MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.lengths:
        f, a = res.get(("fam", n)), res.get(("full", n))
        ratio = f"{a['seconds'] / f['seconds']:.2f}" if f and a else "-"
        print(f"| {n} | {cell(f, 'seconds', n, 1e6)} | {cell(a, 'seconds', n, 1e6)} | {ratio} | "
              f"{cell(f, 'peak_mib', n)} | {cell(a, 'peak_mib', n)} |")
    lo, hi = args.lengths[0], args.lengths[-1]
    for m in args.methods:
        if (m, lo) in res and (m, hi) in res and lo != hi:
            tpt = [res[m, n]["seconds"] / n for n in args.lengths]
            print(f"{m}: RSS peak {hi} / {lo} = {res[m, hi]['rss_mib'] / res[m, lo]['rss_mib']:.3f}; peak growth "
                  f"{res[m, hi]['peak_mib']:.1f} vs {res[m, lo]['peak_mib']:.1f} MiB; time/token max/min = "
                  f"{max(tpt) / min(tpt):.2f}, {hi} / {lo} = {tpt[-1] / tpt[0]:.2f}")
    if ("fam", lo) in res and ("fam", hi) in res and lo != hi:
        st = [res["fam", n]["steady_us_per_token"] for n in args.lengths]
        print(f"fam steady-state (median per block, memory full) us/token: {', '.join(f'{x:.1f}' for x in st)}; "
              f"max/min = {max(st) / min(st):.2f}")


if __name__ == "__main__":
    main()
