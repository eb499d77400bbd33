"""Startup cost of the `core` CLI vs importing pluggy alone, and proof that listing imports no torch.

Target: `core list` and `core --help` under 0.3 s with every plugin of this repo installed.
Run: python benchmarks/startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


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
        ("core --help", [py, "-m", "paperloom", "--help"]),
        ("core list", [py, "-m", "paperloom", "list"]),
        ("core list --json", [py, "-m", "paperloom", "list", "--json"]),
    ]
    base = None
    print(f"{'command':<28} {'median s':>9} {'vs pluggy':>10}")
    for label, cmd in rows:
        t = wall(cmd, args.repeat)
        if "pluggy" in label:
            base = t
        ratio = f"{t / base:.2f}x" if base else ""
        print(f"{label:<28} {t:>9.3f} {ratio:>10}")
    plugins = subprocess.run([py, "-m", "paperloom", "list", "--json"], capture_output=True, text=True).stdout.count(
        '"name"'
    )
    for cmd in (["list"], ["list", "--json"], ["info", "core:demo"]):
        heavy = heavy_modules_after(cmd)
        print(f"heavy modules imported by `core {' '.join(cmd)}`: {heavy or 'none'}")
    tree = subprocess.run([py, "-X", "importtime", "-m", "paperloom", "list"], capture_output=True, text=True).stderr
    print(
        f"`python -X importtime -m paperloom list`: torch imported: {'| torch' in tree}; "
        f"{len(tree.splitlines())} modules imported; entries listed incl. components: {plugins}"
    )


if __name__ == "__main__":
    main()
