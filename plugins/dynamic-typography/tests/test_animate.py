"""The optimization: the reference's learning-rate schedule, its split of the SDS passes, legibility kept."""

import dataclasses
import math

import pytest
import torch
from paperloom_dynamic_typography.animate import lr_factor, make_optimizer, optimize
from paperloom_dynamic_typography.components import build_fields
from paperloom_dynamic_typography.config import AnimateConfig
from paperloom_dynamic_typography.glyph import extract


def test_lr_schedule_matches_the_reference():
    f = lambda s: lr_factor(s, 1000, 0.002, 0.0008, 100, 0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1)  # warm-up starts at delay_mult
    assert f(50) == pytest.approx((0.1 + 0.9 * math.sin(math.pi / 4)) * math.exp(
        math.log(0.002) * 0.95 + math.log(0.0008) * 0.05) / 0.002)
    assert f(1000) == pytest.approx(0.0008 / 0.002)  # ends at lr_final


class RecordingGuidance:
    """A guidance with a scale: pulls every frame's pixels towards black; records the scales of its passes."""

    name, disclosure = "stub", "stub guidance"

    def __init__(self, scale=30.0, log=None):
        self.scale, self.log = scale, log if log is not None else []

    def with_scale(self, s):
        return RecordingGuidance(s, self.log)

    def __call__(self, frames, base, step):
        self.log.append(self.scale)
        return frames.mean() * self.scale


def tiny(**kw):
    o = AnimateConfig()
    return dataclasses.replace(o, size=32, frames=3, steps=3, control_points=24, checkpoint_every=10, log_every=1,
                               **kw)


def test_split_passes_use_both_scales_and_update_every_group(ctx):
    torch.manual_seed(0)
    g = extract("T", 0, control_points=24, canvas=32)
    fields = build_fields(ctx, n_points=len(g.points), n_frames=3, inter_dim=8, embed_dim=4)
    before = {n: p.detach().clone() for n, p in fields.named_parameters()}
    guide = RecordingGuidance()
    res = optimize(g, fields, guide, tiny(), ctx)
    assert guide.log == [30.0, 40.0] * 3  # two passes per step: local (30), global (40)
    changed = {n for n, p in fields.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(before)
    assert res.frames.shape == (3, len(g.points), 2) and 0 <= res.metrics["iou"] <= 1


def test_optimizer_groups_and_learning_rates(ctx):
    fields = build_fields(ctx, n_points=12, n_frames=2, inter_dim=8, embed_dim=4)
    opt, sched = make_optimizer(fields, dataclasses.replace(tiny(), steps=1000))  # warm-up: 100 steps from 0.1
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.005 * 0.1, 0.005 * 0.1, 0.001 * 0.1])
    assert opt.defaults["betas"] == (0.9, 0.9) and opt.defaults["eps"] == 1e-6
    n = sum(len(g["params"]) for g in opt.param_groups)
    assert n == len(list(fields.parameters()))  # every parameter in exactly one group
