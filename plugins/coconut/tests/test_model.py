"""The baseline: output shapes, panoptic post-processing output, and its training targets."""

import numpy as np
import torch
from paperloom_coconut.components import build_panoptic
from paperloom_coconut.model import BaselineConfig, PanopticBaseline, loss_fn, targets
from paperloom_coconut.synthetic import CATS


def test_shapes_and_panoptic_output():
    torch.manual_seed(0)
    model = PanopticBaseline(CATS, BaselineConfig(width=4))
    out = model(torch.rand(2, 3, 16, 20))
    assert out["sem"].shape == (2, len(CATS), 16, 20) and out["center"].shape == (2, 1, 16, 20)
    assert out["offset"].shape == (2, 2, 16, 20)
    (ids, segs), = model.predict_panoptic(torch.rand(1, 3, 18, 22))  # sizes not divisible by 4 are padded
    assert ids.shape == (18, 22) and ids.dtype == np.uint32
    present = set(np.unique(ids).tolist()) - {0}
    assert {s["id"] for s in segs} == present and all(s["area"] == int((ids == s["id"]).sum()) for s in segs)
    assert {s["category_id"] for s in segs} <= {c["id"] for c in CATS}


def test_targets_and_loss(mini, ctx):
    item = build_panoptic(ctx, root=str(mini["fine"]), splits=["s"])[0]
    cat_index = {c["id"]: i for i, c in enumerate(CATS)}
    t = targets(item, cat_index)
    covered = item["masks"].any(0)
    assert ((t["sem"] == 255) == ~covered).all() and t["center"].max() <= 1.0
    assert t["offset_weight"].sum() > 0  # the generated images hold thing instances
    model = PanopticBaseline(CATS, BaselineConfig(width=4))
    loss, parts = loss_fn(model(item["image"][None].float() / 255), {k: v[None] for k, v in t.items()})
    loss.backward()
    assert parts["loss"] > 0 and all(p.grad is not None for p in model.parameters())
