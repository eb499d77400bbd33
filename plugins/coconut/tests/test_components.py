"""The components as other tasks and plugins use them: built by name, and coconut:evaluate scoring a model
that another plugin declares (defined here, so no other paper plugin is needed)."""

import sys
import types

import numpy as np
import pytest

from paperloom import Component, PluginInfo, UserError, hookimpl
from paperloom.context import Run, build_component
from paperloom.runner import execute
from paperloom.testing import registry_with


def _root(mini):
    return [f"data.root={mini['fine']}", "data.splits=[s]"]


def test_components_build_by_name(mini, tmp_path):
    """coconut:panoptic, coconut:baseline and coconut:pq as any task builds them (ctx.build)."""
    reg = registry_with(("coconut", "paperloom_coconut.plugin"))
    ctx = Run(out=tmp_path, plugin="other", task="x", registry=reg)
    data = ctx.build("coconut:panoptic", root=str(mini["fine"]), splits=["relabeled-val"])
    evaluate = ctx.build("coconut:pq", metrics=["pq", "miou"])
    gt = (mini["fine"] / "annotations" / "panoptic_val2017.json", mini["fine"] / "panoptic_val2017")
    m = evaluate(gt, data, ctx)
    assert m["pq"] == 1.0 and m["miou"] == 1.0 and "ap" not in m
    model = ctx.build("coconut:baseline", categories=data.categories, width=8)
    m = evaluate(model, data, ctx)  # a model is run in process
    assert 0.0 <= m["pq"] <= 1.0 and m["images"] == 10.0
    with pytest.raises(UserError, match="metrics: 'bleu'"):
        build_component(reg, "coconut:pq", ctx, metrics=["bleu"])


def test_evaluates_another_plugins_model(mini, tmp_path):
    """coconut:evaluate scores any plugin's model that produces 'panoptic-segmentation', and refuses others."""
    fake = types.ModuleType("fakeseg_plugin")

    class Flat:
        """Predicts one 'grass' segment covering the whole image."""

        def predict_panoptic(self, images):
            h, w = images.shape[-2:]
            return [(np.ones((h, w), np.uint32), [{"id": 1, "category_id": 193, "iscrowd": 0}])]

    fake.build = lambda ctx, **kw: Flat()
    fake.paperloom_plugin = hookimpl(lambda: PluginInfo(summary="a flat segmenter"))
    fake.paperloom_components = hookimpl(lambda: [Component("flat", "model", "fakeseg_plugin:build",
                                                            produces=("panoptic-segmentation",))])
    sys.modules["fakeseg_plugin"] = fake
    reg = registry_with(("coconut", "paperloom_coconut.plugin"), ("fakeseg", fake))
    _, m = execute("coconut:evaluate", overrides=_root(mini) + ["model=fakeseg:flat", "metrics=[pq, miou]"],
                   out=tmp_path / "x", device="cpu", plot=False, reg=reg)
    assert 0.0 < m["miou"] < 1.0 and m["images"] == 12.0
    with pytest.raises(UserError, match="panoptic-segmentation"):
        execute("coconut:evaluate", overrides=_root(mini) + ["model=core:mlp"], out=tmp_path / "y", device="cpu",
                plot=False, reg=reg)
