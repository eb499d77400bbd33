"""``coconut:demo``: the paper's claim that better labels give better models, at toy scale.

COCONut trains the same model (kMaX-DeepLab) on COCO's labels and on its own re-annotation and finds
higher PQ / AP / mIoU on relabeled COCO-val with the better labels. Here: one generated image set with
fine labels and a coarse copy (old-COCO habits, see `synthetic`), the same model component trained on
each, both scored on the fine validation labels by the evaluator component.
"""

from __future__ import annotations

from pathlib import Path

from paperloom.io import atomic_write_text

from .config import DemoConfig

KEYS = ["pq", "sq", "rq", "pq_th", "pq_st", "ap", "ap50", "box_ap", "miou"]


def demo(cfg: DemoConfig, ctx) -> dict[str, float]:
    from paperloom.tables import markdown_table

    from .synthetic import CATS, generate
    from .tasks import predict_to_folder, score, train_model
    from .visualize import visualize

    paths = generate(ctx.out / "data", cfg.n_train, cfg.n_val, cfg.size, ctx.seed)
    val = ctx.build(cfg.dataset, root=str(paths["fine"]), splits=["relabeled-val"])
    evaluate = ctx.build(cfg.evaluator, processes=cfg.processes)
    results: dict[str, float] = {}
    rows = {}
    for label in ("fine", "coarse"):
        stage = ctx.stage(label)  # its own checkpoints/ and metrics <label>/loss ...
        train = ctx.build(cfg.dataset, root=str(paths[label]), splits=["s"],
                          image_dir=str(paths["fine"] / "train2017"), train=True)
        model = ctx.build(cfg.model, categories=CATS, **cfg.model_args)
        trained = train_model(model, train, stage, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                              checkpoint_every=cfg.checkpoint_every, log_every=10)
        results.update({f"{label}_{k}": v for k, v in trained.items()})
        js, png = predict_to_folder(model, val, ctx.out / f"pred_{label}", device=ctx.device)
        m = score(evaluate, (js, png), val, ctx, prefix=f"{label}_")
        results.update(m)
        rows[f"{label} labels"] = {k[len(label) + 1:]: v for k, v in m.items()}
        if cfg.visualize:
            from .pq import load_predictions

            visualize(val, ctx.out / f"vis_{label}", cfg.visualize, load_predictions(str(js), str(png)), str(png))
    # sanity: the ground truth scored as a prediction is 1 everywhere
    gt = val.indexes[0]
    gm = evaluate((gt.json_path, gt.png_dir), val, ctx)
    results.update({"gt_as_pred_pq": gm["pq"], "gt_as_pred_ap": gm["ap"], "gt_as_pred_miou": gm["miou"]})
    text = markdown_table([[name, *(f"{100 * r.get(k, float('nan')):.1f}" for k in KEYS)] for name, r in rows.items()],
                          ["labels", *KEYS])
    atomic_write_text(ctx.out / "fine_vs_coarse.md", text + "\n")
    ctx.log.info("evaluated on the fine validation labels (values in %):\n" + text)
    plot(rows, ctx.out / "fine_vs_coarse.png")
    return results


def plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    """Grouped bars: one group per metric, one bar per label quality."""
    import numpy as np

    from paperloom.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.arange(len(KEYS))
    for k, (name, r) in enumerate(rows.items()):
        ax.bar(x + (k - 0.5) * 0.38, [100 * r.get(m, 0) for m in KEYS], 0.38, label=name)
    ax.set_xticks(x, KEYS)
    ax.set_ylabel("%")
    ax.set_title("COCONut demo: baseline trained on fine vs coarse labels, evaluated on fine labels")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
