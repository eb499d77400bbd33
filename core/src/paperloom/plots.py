"""Figures: `save_figure` (atomic, no display needed) and the run's `curves.png`.

matplotlib is an optional dependency of the core (extra ``plot``); without it no figure is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .io import read_jsonl

BOOKKEEPING = ("epoch", "lr", "learning_rate", "grad_norm", "seconds")


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (works headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save `fig` to a temp file and rename (a reader never sees half a PNG), then close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    os.replace(tmp, path)
    return path


def panels(rows: list[dict], first: Sequence[str] = (), limit: int = 9) -> dict[str, dict[str, list]]:
    """metric -> stage -> [(step, value)] sorted by step: one panel per metric holding every stage that logged
    it (``<stage>/<metric>``; "" for the run itself), so compared methods share one axis. Claimed metrics
    (`first`) lead, bookkeeping comes last, otherwise the order they were logged in; at most `limit`."""
    series: dict[str, dict[str, list]] = {}
    for r in rows:
        if r.get("step") is None:
            continue
        for k, v in r.items():
            if k == "step" or not isinstance(v, (int, float)):
                continue
            stage, _, metric = k.rpartition("/")
            series.setdefault(metric, {}).setdefault(stage, []).append((r["step"], v))
    wanted = [m.rpartition("/")[2] for m in first]

    def rank(m: str) -> tuple:
        return (m not in wanted, wanted.index(m) if m in wanted else 0, any(b in m for b in BOOKKEEPING))

    ordered = sorted(series, key=rank)[:limit]  # a stable sort
    return {m: {s: sorted(p, key=lambda x: x[0]) for s, p in sorted(series[m].items())} for m in ordered}


def plot_curves(jsonl: Path, png: Path, title: str = "", first: Sequence[str] = ()) -> Path | None:
    """Panels of the logged curves against step. Stage metrics (``<stage>/<metric>``) share one panel per
    metric, a line per stage; the metrics named in `first` (a task's claims) come first, bookkeeping
    (learning rate, epoch) last, at most 9 panels. Returns None when nothing was logged or matplotlib
    is not installed."""
    series = panels(read_jsonl(jsonl), first)
    if not series:
        return None
    try:
        plt = pyplot()
    except ImportError:
        return None
    metrics = list(series)
    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for stage, pts in series[metric].items():  # sorted by step: a resumed run must not zigzag
            marker = "." if len(pts) < 40 else None
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=stage or None)
        if len(series[metric]) > 1:
            ax.legend(fontsize=7)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, png)
