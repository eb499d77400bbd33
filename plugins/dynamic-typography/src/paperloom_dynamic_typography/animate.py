"""The optimization of Dynamic Typography (arXiv 2404.11614, Sec. 4, Eq. 6): render the base shape and every frame,
guidance on the frames + legibility on the base + structure preservation (conformal on the base, transition
between frames), three Adam optimizers' learning rates and schedules as the reference (as param groups here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .glyph import Glyph
from .losses import ConformalLoss, Legibility, cos_schedule, linear_schedule, ssim
from .raster import coverage


@dataclass
class Result:
    base: np.ndarray  # (N, 2)
    frames: np.ndarray  # (F, N, 2)
    metrics: dict[str, float]


def lr_factor(step: int, num_iter: int, lr_init: float, lr_final: float, delay_steps: int, delay_mult: float) -> float:
    """The reference's (VectorFusion's) schedule / lr_init: sine warm-up from delay_mult over delay_steps, then a
    log-linear decay lr_init -> lr_final."""
    delay = delay_mult + (1 - delay_mult) * math.sin(0.5 * math.pi * min(max(step / delay_steps, 0), 1)) \
        if delay_steps > 0 else 1.0
    t = min(max(step / num_iter, 0), 1)
    return delay * math.exp(math.log(lr_init) * (1 - t) + math.log(lr_final) * t) / lr_init


def make_optimizer(fields, o) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    groups = fields.param_groups()
    opt = torch.optim.Adam([{"params": groups["base"], "lr": o.lr_local},
                            {"params": groups["local"], "lr": o.lr_local},
                            {"params": groups["global"], "lr": o.lr_base_global}], betas=(0.9, 0.9), eps=1e-6)
    delay = int(o.lr_delay_frac * o.steps)
    f = lambda final: (lambda s: lr_factor(s, o.steps, o.lr_init, final, delay, o.lr_delay_mult))  # noqa: E731
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, [f(o.lr_final / 5), f(o.lr_final), f(o.lr_final)])


def render_kw(o) -> dict:
    return {"supersample": o.supersample, "fill_rule": o.fill_rule, "edge_len": o.edge_len,
            "backend": o.raster_backend}


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum().clamp_min(1))


def measure(glyph_pts: torch.Tensor, base: torch.Tensor, frames: torch.Tensor, glyph: Glyph, conformal: ConformalLoss,
            o) -> dict[str, float]:
    """Legibility (IoU, SSIM of the base frame with the glyph), motion (mean point displacement of the frames from
    the base, in canvas widths), structure (conformal loss of the base and of the frames, transition loss)."""
    with torch.no_grad():
        cov = coverage(torch.cat([glyph_pts[None], base[None]]), glyph.sizes, o.size, **render_kw(o))
        return {"iou": iou(cov[1], cov[0]), "ssim": float(ssim(cov[1:], cov[:1])[0]),
                "motion": float((frames - base[None]).norm(dim=-1).mean() / o.size),
                "conformal": float(conformal(base)), "conformal_frames": float(conformal(frames)),
                "transition": float(conformal.transition(frames, base))}


def optimize(glyph: Glyph, fields, guidance, o, ctx, structure: bool = True) -> Result:
    """Optimize `fields` for `o.steps` steps; resumable (checkpoints/last.pt in ctx's folder)."""
    from paperloom.checkpoint import Checkpoint

    dev = ctx.device
    fields.to(dev)
    pts = torch.tensor(glyph.points, dtype=torch.float32, device=dev)
    target = coverage(pts[None], glyph.sizes, o.size, **render_kw(o))
    legibility = Legibility(target, o.legibility)
    conformal = ConformalLoss(glyph.points, glyph.sizes, o.fill_rule)
    conformal.angles = conformal.angles.to(dev)
    opt, sched = make_optimizer(fields, o)
    ckpt = Checkpoint(ctx)
    start = ckpt.restore(fields, opt, sched)
    change = int(o.change_point_frac * o.steps)
    groups = fields.param_groups()
    # the reference's split: one pass (guidance s) updates base + local motion, a second (guidance s_global = 40)
    # updates base + global affine; with a guidance that has no scale (the local one) a single pass updates all
    passes = [(guidance, None)]
    if o.split_global and hasattr(guidance, "with_scale"):
        passes = [(guidance, "global"), (guidance.with_scale(o.guidance_scale_global), "local")]

    def objective(guide, step):
        base, frames = fields(pts, step)
        cov = coverage(torch.cat([frames, base[None]]), glyph.sizes, o.size, **render_kw(o))  # (F + 1, H, W)
        imgs = (1 - cov)[:, None].expand(-1, 3, -1, -1)
        loss_g = guide(imgs[:-1], imgs[-1], step) * o.guidance_weight
        if o.schedule == "cos":
            w_leg = cos_schedule(step, o.steps, o.schedule_rate, o.schedule_base)
        elif o.schedule == "linear":
            w_leg = linear_schedule(step, o.steps, max(1, change), o.schedule_rate, o.schedule_base)
        else:
            w_leg = 1.0
        loss_leg = legibility(cov[-1:])
        loss = loss_g + o.legibility_weight * w_leg * loss_leg
        logs = {"guidance_loss": loss_g.item(), "legibility_loss": loss_leg.item()}
        if structure:
            loss_cf = conformal(base)
            loss_tr = conformal.transition(frames, base)
            loss = loss + o.conformal_weight * loss_cf + o.transition_weight * loss_tr
            logs.update(conformal_loss=loss_cf.item(), transition_loss=loss_tr.item())
        return loss, logs

    for step in ctx.progress(range(start, o.steps), description=f"animate {glyph.letter!r}"):
        for guide, frozen in passes:
            loss, logs = objective(guide, step)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at step {step}; lower the learning rates")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for p in groups.get(frozen, []):
                p.grad = None  # Adam skips parameters without a gradient
            opt.step()
        sched.step()
        if (step + 1) % o.log_every == 0 or step + 1 == o.steps:
            ctx.log_metrics({**logs, "loss": loss.item()}, step=step + 1)
        if (step + 1) % o.checkpoint_every == 0 or step + 1 == o.steps:
            ckpt.save(step + 1, fields, opt, sched)
    with torch.no_grad():
        base, frames = fields(pts, o.steps)
    m = measure(pts, base, frames, glyph, conformal, o)
    return Result(base.cpu().numpy(), frames.cpu().numpy(), m)
