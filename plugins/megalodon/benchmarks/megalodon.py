"""Megalodon vs a same-width Llama-style full-attention model: time and peak memory vs context length.

    python plugins/megalodon/benchmarks/megalodon.py             # CPU: 1K..16K tokens, forward and forward+backward
    python plugins/megalodon/benchmarks/megalodon.py --lengths 1024 4096 --device cuda

Megalodon's attention is chunk-wise (fixed chunk), CEMA is an FFT convolution and timestep norm a
cumulative scan, so its cost should grow ~2x per doubling of the context; full causal attention grows
towards 4x. Also times the CEMA paths: sequential recurrence (reference), FFT convolution, Triton scan
(on CPU only through the Triton interpreter, which checks correctness, not speed).
Peak memory: CUDA allocator peak on GPU; on CPU the peak resident-set growth during the call (sampled).
Megalodon runs with its defaults (`recompute_cema_norm=True`; `--no-recompute` turns it off); a last table gives
the forward+backward peak memory of its options, `recompute_attention=True` and per-layer activation
checkpointing (`activation_checkpointing_enable()`), as ratios to Llama (and to Llama with checkpointing).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # large CPU buffers via mmap: freed memory leaves RSS, peaks show
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch  # noqa: E402

if not torch.cuda.is_available():  # noqa: E402
    os.environ.setdefault("TRITON_INTERPRET", "1")  # Triton kernels run (slowly) in the interpreter on CPU

from paperloom_megalodon.cema import cema_coeffs, cema_fft, cema_sequential  # noqa: E402
from paperloom_megalodon.kernels import HAS_TRITON, triton_cema  # noqa: E402
from paperloom_megalodon.model import MegalodonForCausalLM, preset_config  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory growth during a block (CUDA allocator, or sampled RSS on CPU), in MiB."""

    def __init__(self, device: str) -> None:
        self.device, self.peak = device, 0.0

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base, self.top, self.running = _rss(), _rss(), True

        def sample() -> None:
            while self.running:
                self.top = max(self.top, _rss())
                time.sleep(0.002)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = (torch.cuda.max_memory_allocated() - self.base) / 2**20
            return
        self.running = False
        self.thread.join()
        self.peak = (max(self.top, _rss()) - self.base) / 2**20


def measure(model: torch.nn.Module, length: int, backward: bool, device: str, repeats: int) -> tuple[float, float]:
    ids = torch.randint(0, model.config.vocab_size, (1, length), device=device)
    times, peak = [], 0.0
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        with PeakMemory(device) as mem:
            start = time.perf_counter()
            if backward:
                model(input_ids=ids, labels=ids).loss.backward()
            else:
                with torch.no_grad():
                    model(input_ids=ids)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peak = max(peak, mem.peak)
    return min(times), peak


def models(width: int, layers: int, chunk: int, vocab: int, device: str, recompute: bool = True,
           ) -> dict[str, torch.nn.Module]:
    """Megalodon (defaults), its memory options, and a same-width Llama with and without checkpointing."""
    torch.manual_seed(0)
    cfg = preset_config(
        "small", vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=1, z_dim=width // 2,
        value_dim=2 * width, ffn_hidden_size=int(2.5 * width), cema_ndim=16, chunk_size=chunk, norm_num_groups=32,
        recompute_cema_norm=recompute)
    mega = MegalodonForCausalLM(cfg)
    heads = max(1, width // 64)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers,
                                         num_attention_heads=heads, num_key_value_heads=heads,
                                         intermediate_size=int(2.5 * width), max_position_embeddings=1 << 16,
                                         attn_implementation="sdpa"))
    out = {"megalodon": mega, "llama": llama}
    attn = MegalodonForCausalLM(preset_config("small", **{**cfg.to_diff_dict(), "recompute_attention": True}))
    out["megalodon+recompute_attention"] = attn
    for name, src in (("megalodon+ckpt", mega), ("llama+ckpt", llama)):
        m = type(src)(src.config)
        m.activation_checkpointing_enable()  # per-layer activation checkpointing
        out[name] = m
    for name, m in out.items():
        if m is not mega and m is not llama:
            m.load_state_dict((llama if name.startswith("llama") else mega).state_dict())
    return {name: m.to(device).train() for name, m in out.items()}


def model_table(args: argparse.Namespace) -> None:
    ms = models(args.width, args.layers, args.chunk, args.vocab, args.device, not args.no_recompute)
    for name, m in ms.items():
        print(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e6:.2f}M params")
        measure(m, 256, True, args.device, 1)  # warm-up
    memory = []
    for backward in (False, True):
        mode = "forward+backward" if backward else "forward"
        print(f"\n### {mode} (batch 1, {args.layers} layers, width {args.width}, Megalodon chunk {args.chunk})\n")
        print("| tokens | Megalodon s | Llama s | Llama/Megalodon time | Megalodon MiB | Llama MiB "
              "| Megalodon/Llama memory | Megalodon x/doubling | Llama x/doubling |")
        print("|---:" * 9 + "|")
        prev = None
        for length in args.lengths:
            tm, mm = measure(ms["megalodon"], length, backward, args.device, args.repeats)
            tl, ml = measure(ms["llama"], length, backward, args.device, args.repeats)
            grow = (f"{tm / prev[0]:.2f} | {tl / prev[1]:.2f}" if prev else "- | -")
            print(f"| {length} | {tm:.3f} | {tl:.3f} | {tl / tm:.2f} | {mm:.0f} | {ml:.0f} | {mm / ml:.2f} | {grow} |",
                  flush=True)
            prev = (tm, tl)
            if backward:  # the memory options only matter with a backward pass
                extra = {n: measure(ms[n], length, True, args.device, args.repeats)
                         for n in ("megalodon+recompute_attention", "megalodon+ckpt", "llama+ckpt")}
                memory.append((length, tm, mm, ml, extra))
    print(f"\n### forward+backward peak memory, Megalodon's options vs Llama (batch 1, {args.layers} layers, "
          f"width {args.width})\n")
    print("| tokens | Llama MiB | Megalodon MiB (/Llama) | s | +recompute_attention MiB (/Llama) | s | "
          "+layer ckpt MiB (/Llama) | s | Llama+ckpt MiB | Megalodon+ckpt / Llama+ckpt |")
    print("|---:" * 10 + "|")
    for length, tm, mm, ml, extra in memory:
        (ta, ma), (tc, mc), (_, mlc) = (extra[n] for n in ("megalodon+recompute_attention", "megalodon+ckpt",
                                                              "llama+ckpt"))
        print(f"| {length} | {ml:.0f} | {mm:.0f} ({mm / ml:.2f}) | {tm:.2f} | {ma:.0f} ({ma / ml:.2f}) | {ta:.2f} | "
              f"{mc:.0f} ({mc / ml:.2f}) | {tc:.2f} | {mlc:.0f} | {mc / mlc:.2f} |", flush=True)


def cema_table(args: argparse.Namespace) -> None:
    dim, ndim = args.width, 16
    g = torch.Generator().manual_seed(0)
    raw = [torch.randn(dim, ndim, generator=g), torch.randn(dim, ndim, generator=g), torch.randn(dim, generator=g),
           torch.randn(dim, ndim, 2, generator=g)]
    raw = [t.to(args.device) for t in raw]
    omega = torch.randn(dim, device=args.device) * 0.25
    p, q, eta = cema_coeffs(*raw)
    interp = args.device != "cuda"
    print(f"\n### CEMA paths (batch 1, D={dim}, N={ndim}, forward, seconds)\n")
    print("| tokens | sequential (reference) | FFT | Triton scan | seq/FFT |")
    print("|---:|---:|---:|---:|---:|")
    for length in args.cema_lengths:
        x = torch.randn(1, length, dim, device=args.device)

        def timed(fn):  # noqa: B023 (called right away, inside the loop)
            best = float("inf")
            for _ in range(args.repeats):
                if args.device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                with torch.no_grad():
                    fn()
                if args.device == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
            return best

        ts = timed(lambda x=x: cema_sequential(x, p, q, eta, omega))
        tf = timed(lambda x=x: cema_fft(x, p, q, eta, omega))
        if HAS_TRITON and (not interp or length <= args.interp_max):
            tt = f"{timed(lambda x=x: triton_cema(x, p, q, eta, omega)):.4f}" + (" (interpreter)" if interp else "")
        else:
            tt = "n/a"
        print(f"| {length} | {ts:.4f} | {tf:.4f} | {tt} | {ts / tf:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    ap.add_argument("--cema-lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--interp-max", type=int, default=1024, help="longest length for the Triton interpreter on CPU")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-recompute", action="store_true",
                    help="Megalodon with recompute_cema_norm=False (store the CEMA / timestep-norm activations)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    print(f"machine: {name}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    model_table(args)
    cema_table(args)


if __name__ == "__main__":
    main()
