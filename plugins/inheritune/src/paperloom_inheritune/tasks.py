"""The `inherit` task, and `pretrain`: the `lm` plugin's one pre-training recipe with Inheritune's defaults
and presets (configs/pretrain.yaml, configs/pretrain/{paper,tiny}.yaml). The data budget of the paper
(the student sees a small subset of the reference's data) is `data.train_fraction` / `data.train_tokens`;
`token_budget` is the compute budget (it sets trainer.max_steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paperloom_lm.tasks import pretrain

from paperloom.context import looks_like_path

from .inherit import count_params, inherit_from_folder, inherit_from_model, save_student

__all__ = ["inherit", "pretrain"]


def inherit(cfg: Any, ctx: Any) -> dict[str, float]:
    """Make the k-block student of `cfg.reference` and save it as an HF checkpoint folder."""
    out = Path(cfg.out).expanduser() if cfg.out else ctx.out / "student"
    if looks_like_path(cfg.reference):  # read only the tensors the student copies
        student, plan, stats = inherit_from_folder(cfg.reference, cfg.inherit, ctx.seed)
        ref_params = None
    else:
        reference = ctx.build(cfg.reference, **cfg.reference_args)
        student, plan = inherit_from_model(reference, cfg.inherit, ctx.seed)
        stats, ref_params = {}, count_params(reference)
    save_student(student, out, plan, cfg.reference)
    cats = sorted(set(plan.reinit.values()))
    ctx.log.info(f"student: reference blocks {plan.blocks} of {plan.prefix}; {len(plan.copy)} tensors copied, "
                 f"re-initialised: {', '.join(cats) or 'nothing'} -> {out}")
    metrics = {**plan.summary(), **stats, "student_params": count_params(student)}
    if ref_params is not None:
        metrics["reference_params"] = ref_params
    return metrics
