"""The demo's and tasks' plots: accuracy vs rollout budget per method, and accuracy per improvement round."""

from __future__ import annotations

from pathlib import Path

from paperloom.plots import pyplot, save_figure

LABELS = {"greedy": "greedy", "sc": "self-consistency", "rerank": "re-ranking (critics)", "mcts": "eta-MCTS"}


def budget_curve(metrics: dict, budgets: list[int], path: Path, title: str = "accuracy vs rollout budget") -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    g = [metrics[f"greedy_accuracy_b{b}"] for b in budgets]  # one decode: the same at every budget
    g_se = [metrics[f"greedy_se_b{b}"] for b in budgets]
    ax.axhline(g[0], color="k", ls="--", lw=1, label=f"greedy ({g[0]:.2f})")
    ax.axhspan(g[0] - g_se[0], g[0] + g_se[0], color="k", alpha=0.08)
    for m, label in LABELS.items():
        if m == "greedy":
            continue
        ys = [metrics[f"{m}_accuracy_b{b}"] for b in budgets]
        es = [metrics[f"{m}_se_b{b}"] for b in budgets]
        ax.errorbar(budgets, ys, yerr=es, marker="o", capsize=3, label=label)
    if all(f"mcts_any_accuracy_b{b}" in metrics for b in budgets):  # the oracle: a right leaf in the tree
        ax.errorbar(budgets, [metrics[f"mcts_any_accuracy_b{b}"] for b in budgets],
                    yerr=[metrics[f"mcts_any_se_b{b}"] for b in budgets], marker="x", ls=":", capsize=3,
                    color="gray", label="eta-MCTS: some leaf right (oracle)")
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
