"""The demo's and tasks' plots: accuracy vs rollout budget per method, and accuracy per improvement round."""

from __future__ import annotations

from pathlib import Path

from paperloom.plots import pyplot, save_figure

LABELS = {"greedy": "greedy", "sc": "self-consistency", "rerank": "re-ranking (critics)", "mcts": "eta-MCTS"}


def budget_curve(metrics: dict, budgets: list[int], path: Path, title: str = "accuracy vs rollout budget") -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m, label in LABELS.items():
        ys = [metrics[f"{m}_accuracy_b{b}"] for b in budgets]
        es = [metrics[f"{m}_se_b{b}"] for b in budgets]
        ax.errorbar(budgets, ys, yerr=es, marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("rollout budget (options generated per problem)")
    ax.set_ylabel(f"accuracy on {int(metrics['problems'])} held-out problems (+/- 1 SE)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def rounds_curve(rows: list[dict], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    xs = [r["round"] for r in rows]
    for key, label in (("greedy", "greedy"), ("mcts", "eta-MCTS")):
        if all(f"{key}_accuracy" in r for r in rows):
            ax.errorbar(xs, [r[f"{key}_accuracy"] for r in rows], yerr=[r[f"{key}_se"] for r in rows], marker="o",
                        capsize=3, label=label)
    ax.set_xticks(xs)
    ax.set_xlabel("self-improvement round (0 = before)")
    ax.set_ylabel("held-out accuracy (+/- 1 SE)")
    ax.set_title("AlphaLLM self-improvement")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
