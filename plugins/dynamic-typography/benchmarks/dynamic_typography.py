"""Rasterizer speed: forward + backward at 256 x 256 with 24 frames (the paper's video size), side by side with
(1) a naive per-pixel reference (Python loops over pixels and edges, as `tests/reference.py`; forward only, timed
on a slice of rows and scaled to the whole batch) and (2) the dense all-pairs torch version (autograd through the
min over every edge; timed on a smaller problem, because at full size its (frames x pixels x edges) tensors do not
fit in memory, and compared with the fast path on that same problem). Peak memory of each: the process's peak
RSS above its start (CPU) or torch.cuda.max_memory_allocated (GPU). One run; prints a table and ratios.

    python plugins/dynamic-typography/benchmarks/dynamic_typography.py [--device cuda] [--rows 4]

On CUDA it adds the Triton kernel path (kernels.py) beside the torch path on the same GPU (not run here: no GPU
was lent to the sessions that wrote it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def problem(size: int, frames: int, device: str, dtype_name: str = "float32"):
    import torch
    from paperloom_dynamic_typography.glyph import extract

    g = extract("CAMEL", 2, control_points=100, canvas=size)
    gen = torch.Generator().manual_seed(0)
    base = torch.tensor(g.points, dtype=getattr(torch, dtype_name))
    pts = torch.stack([base + torch.randn(base.shape, generator=gen, dtype=base.dtype) * size / 128
                       for _ in range(frames)]).to(device)
    return g, pts.requires_grad_()


def one(kind: str, size: int, frames: int, device: str, rows: int, repeats: int) -> dict:
    """Run one measurement in this process; returns seconds per call and peak memory."""
    import torch

    torch.set_num_threads(1)
    from paperloom_dynamic_typography.raster import coverage, coverage_dense, polygon_edges

    g, pts = problem(size, frames, device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if kind == "naive":
        sys.path.insert(0, str(HERE.parent / "tests"))
        from reference import naive_coverage

        a, b = polygon_edges(pts.detach()[:1].cpu() * 2, g.sizes, 2, 2.0)  # the fast path's polygon (sub-pixels)
        edges = [(float(p[0]) / 2, float(p[1]) / 2, float(q[0]) / 2, float(q[1]) / 2) for p, q in zip(a[0], b[0])]
        # back in canvas pixels: the reference works in sub-pixels of ss = 2 itself; time `rows` rows of one frame
        t = time.perf_counter()
        naive_coverage(edges, rows, size, 2)
        sec = (time.perf_counter() - t) * (size / rows) * frames  # whole frames, all of them
        return {"sec": sec, "edges": len(edges), "peak_mb": 0.0, "estimated": True}
    fn = {"fast": lambda *a, **k: coverage(*a, backend="torch", **k),
          "triton": lambda *a, **k: coverage(*a, backend="triton", **k), "dense": coverage_dense}[kind]
    times = []
    for _ in range(repeats + (kind == "triton")):  # the kernel's first call compiles it: not timed
        pts.grad = None
        t = time.perf_counter()
        fn(pts, g.sizes, size, supersample=2).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
    times = times[1:] if kind == "triton" else times
    return {"sec": sorted(times)[len(times) // 2], "peak_mb": peak, "estimated": False}


def measure(kind: str, size: int, frames: int, device: str, rows: int = 4, repeats: int = 3) -> dict:
    """Each measurement in a fresh process, so peak memory is its own."""
    cmd = [sys.executable, __file__, "--one", kind, "--size", str(size), "--frames", str(frames), "--device", device,
           "--rows", str(rows), "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", type=int, default=4, help="rows of one frame the naive reference is timed on")
    ap.add_argument("--one", default="")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.size, args.frames, args.device, args.rows, args.repeats)))
        return
    import os

    from paperloom.tables import text_table

    rows = []
    full = measure("fast", 256, 24, args.device)
    naive = measure("naive", 256, 24, "cpu", rows=args.rows)
    small = (64, 4)
    fast_s = measure("fast", *small, args.device)
    dense_s = measure("dense", *small, args.device, repeats=1)
    fps = lambda r, f: f / r["sec"]  # noqa: E731
    rows.append(["fast (this plugin), fwd+bwd", "256x256 x24", f"{full['sec']:.3f}", f"{fps(full, 24):.1f}",
                 f"{full['peak_mb']:.0f}", "1.0x"])
    rows.append([f"naive per-pixel reference, fwd only (est. from {args.rows} rows)", "256x256 x24",
                 f"{naive['sec']:.1f}", f"{fps(naive, 24):.3f}", "-", f"{naive['sec'] / full['sec']:.0f}x"])
    rows.append(["fast (this plugin), fwd+bwd", "64x64 x4", f"{fast_s['sec']:.4f}", f"{fps(fast_s, 4):.1f}",
                 f"{fast_s['peak_mb']:.0f}", "1.0x"])
    rows.append(["dense all-pairs torch, fwd+bwd", "64x64 x4", f"{dense_s['sec']:.3f}", f"{fps(dense_s, 4):.2f}",
                 f"{dense_s['peak_mb']:.0f}", f"{dense_s['sec'] / fast_s['sec']:.0f}x"])
    if args.device.startswith("cuda"):  # the Triton kernel (winding + nearest edge) vs the torch path, same GPU
        kern = measure("triton", 256, 24, args.device)
        rows.append(["Triton kernel + torch distances, fwd+bwd", "256x256 x24", f"{kern['sec']:.4f}",
                     f"{fps(kern, 24):.1f}", f"{kern['peak_mb']:.0f}", f"{kern['sec'] / full['sec']:.2f}x"])
    print(f"device {args.device}, 1 thread, supersample 2 x 2, edges <= 2 sub-pixels "
          f"({naive['edges']} edges in frame 1), load {os.getloadavg()[0]:.1f}")
    print(text_table(rows, ["rasterizer", "problem", "s / call", "frames / s", "peak MB", "slower than fast"]))
    print(f"speed-up vs the naive per-pixel reference: {naive['sec'] / full['sec']:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
