"""Startup cost of the `core` CLI vs the discovery floor, and proof that listing imports no torch.

The floor is a process that only imports pluggy and scans the entry-point group (what any pluggy host
must do). Target (Core 0.2): `core list` within 1.5x of the floor with every plugin of this repo installed.
Run: python benchmarks/startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

FLOOR = "import pluggy, importlib.metadata as md; [ep.name for ep in md.entry_points(group='paperloom.plugins')]"


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def heavy_modules_after(args: list[str]) -> list[str]:
    code = (
        f"import sys; from paperloom.cli import main; main({args!r}); "
        "heavy = [m for m in ('torch', 'lightning', 'transformers', 'trl', 'numpy') if m in sys.modules]; "
        "print('HEAVY:' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("HEAVY:")][-1]
    return [m for m in line[len("HEAVY:") :].split(",") if m]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    rows = [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import pluggy'", [py, "-c", "import pluggy"]),
        ("discovery floor", [py, "-c", FLOOR]),
        ("core --help", [py, "-m", "paperloom", "--help"]),
        ("core list", [py, "-m", "paperloom", "list"]),
        ("core list --json", [py, "-m", "paperloom", "list", "--json"]),
    ]
    base = None
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.2f}; median of {args.repeat} runs, interleaved")
    times: dict[str, list[float]] = {label: [] for label, _ in rows}
    for _ in range(args.repeat):  # interleaved, so a busy moment slows every command alike
        for label, cmd in rows:
            times[label].append(wall(cmd, 1))
    print(f"{'command':<28} {'median s':>9} {'vs floor':>10}")
    base = statistics.median(times["discovery floor"])
    for label, _ in rows:
        t = statistics.median(times[label])
        print(f"{label:<28} {t:>9.3f} {t / base:>9.2f}x")
    plugins = subprocess.run([py, "-m", "paperloom", "list", "--json"], capture_output=True, text=True).stdout.count(
        '"name"'
    )
    for cmd in (["list"], ["list", "--json"], ["info", "core:demo"], ["info", "lm:pretrain"]):
        heavy = heavy_modules_after(cmd)
        print(f"heavy modules imported by `core {' '.join(cmd)}`: {heavy or 'none'}")
    tree = subprocess.run([py, "-X", "importtime", "-m", "paperloom", "list"], capture_output=True, text=True).stderr
    print(
        f"`python -X importtime -m paperloom list`: torch imported: {'| torch' in tree}; "
        f"{len(tree.splitlines())} modules imported; entries listed incl. components: {plugins}"
    )


if __name__ == "__main__":
    main()
