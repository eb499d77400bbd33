"""SLIP with SSL weight 0 equals CLIP; SLIP's head and loss; the logit-scale clamp; the strategies' views."""

import copy

import pytest
import torch
from paperloom_clip.config import AugConfig, StrategyConfig
from paperloom_clip.loss import MAX_LOGIT_SCALE
from paperloom_clip.strategies import ContrastiveModule, ssl_head


def step_grads(module, batch):
    module.zero_grad()
    out = module.losses(batch)
    out["loss"].backward()
    return out, {n: p.grad.clone() for n, p in module.model.named_parameters() if p.grad is not None}


def test_slip_with_ssl_weight_zero_equals_clip(vit, batch):
    clip = ContrastiveModule(vit, StrategyConfig(name="clip"))
    slip = ContrastiveModule(copy.deepcopy(vit), StrategyConfig(name="slip", ssl_weight=0.0, ssl_mlp_dim=32,
                                                                ssl_out_dim=8))
    (o1, g1), (o2, g2) = step_grads(clip, batch), step_grads(slip, batch)
    assert float(o2["ssl_loss"].detach()) > 0  # the SSL loss is computed, it just does not count
    assert torch.equal(o1["loss"], o2["loss"]) and g1.keys() == g2.keys()
    assert all(torch.equal(g1[k], g2[k]) for k in g1)


def test_slip_adds_the_weighted_ssl_loss(vit, batch):
    slip = ContrastiveModule(vit, StrategyConfig(name="slip", ssl_weight=0.5, ssl_mlp_dim=32, ssl_out_dim=8))
    out = slip.losses(batch)
    expected = float((out["clip_loss"] + 0.5 * out["ssl_loss"]).detach())
    assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-6)
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in slip.ssl_head.parameters())


def test_ssl_head_shape_is_slips():
    head = ssl_head(64)  # SLIP: d -> 4096 -> 4096 -> 256 with BN + ReLU
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 4096), (4096, 4096), (4096, 256)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in head) == 2
    assert head(torch.randn(3, 64)).shape == (3, 256)


def test_logit_scale_starts_at_1_over_007_and_is_clamped_at_100(vit):
    assert float(vit.logit_scale.exp()) == pytest.approx(1 / 0.07)
    module = ContrastiveModule(vit, StrategyConfig())
    with torch.no_grad():
        vit.logit_scale.fill_(10.0)
    module.on_train_batch_end()
    assert float(vit.logit_scale.exp()) == pytest.approx(100.0)


def test_views_of_each_strategy(tokenizer):
    from paperloom_clip.augment import BatchViews, Collate, clip_view, simclr_view, strong_view

    items = [{"image": torch.rand(3, 16, 16), "text": "a red circle"} for _ in range(4)]
    torch.manual_seed(0)
    assert clip_view(16, 1.0) is None
    plain = Collate(tokenizer, 8, None)(items)
    assert torch.equal(plain["image"], torch.stack([it["image"] for it in items]))  # crop_min 1: untouched
    assert plain["input_ids"].shape == plain["attention_mask"].shape == (4, 8) and "view1" not in plain
    strong = Collate(tokenizer, 8, strong_view(16, AugConfig()))(items)
    assert strong["image"].shape == (4, 3, 16, 16) and not torch.equal(strong["image"], plain["image"])
    assert 0 <= float(strong["image"].min()) and float(strong["image"].max()) <= 1
    slip = Collate(tokenizer, 8, clip_view(16, 0.9), simclr_view(16))(items)
    assert slip["view1"].shape == slip["view2"].shape == (4, 3, 16, 16)
    assert not torch.equal(slip["view1"], slip["view2"])
    flipped = BatchViews(1.0, flip=True)(torch.stack([it["image"] for it in items] * 8))  # 32 images, p 0.5 each
    originals = torch.stack([it["image"] for it in items] * 8)
    same = [bool(torch.equal(a, b)) for a, b in zip(flipped, originals)]
    assert all(s or torch.equal(a, b.flip(-1)) for s, a, b in zip(same, flipped, originals)) and 0 < sum(same) < 32
    gray = BatchViews(grayscale_p=1.0)(originals)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])


def test_flip_on_a_resnet_is_a_clear_error(tokenizer, ctx):
    from paperloom_clip.components import build_model
    from paperloom_clip.tasks import train_clip

    from paperloom import UserError
    from paperloom.schemas import OptimConfig, TrainerConfig

    resnet = build_model(None, "RN-Ti", tokenizer=tokenizer)
    with pytest.raises(UserError, match="flip"):
        train_clip(resnet, [], StrategyConfig(name="flip"), OptimConfig(), TrainerConfig(), ctx)
    assert MAX_LOGIT_SCALE == pytest.approx(4.60517, abs=1e-5)
