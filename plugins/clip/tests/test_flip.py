"""FLIP: the kept-token formula, patch dropout, and FLIP with ratio 0 or in eval mode equals CLIP exactly."""

import copy

import pytest
import torch
from paperloom_clip.config import StrategyConfig
from paperloom_clip.flip import kept_tokens, patch_dropout
from paperloom_clip.strategies import ContrastiveModule


@pytest.mark.parametrize("n,p,expected", [(64, 0.5, 33), (64, 0.75, 17), (49, 0.75, 13), (196, 0.5, 99),
                                          (3, 0.9, 2), (10, 0.0, 11)])
def test_kept_tokens_formula(n, p, expected):
    assert kept_tokens(n, p) == expected  # 1 + max(1, int(N * (1 - p))), by hand


@pytest.mark.parametrize("seed,n,ratio", [(0, 16, 0.5), (1, 49, 0.75), (2, 7, 0.9)])
def test_patch_dropout_keeps_cls_and_a_subset_in_order(seed, n, ratio):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 1 + n, 8, generator=g)
    y = patch_dropout(x, ratio, generator=g)
    assert y.shape == (3, kept_tokens(n, ratio), 8)
    assert torch.equal(y[:, 0], x[:, 0])
    for b in range(3):  # every kept token is one of the image's patches, in increasing position, no repeats
        pos = [int((x[b, 1:] == t).all(-1).nonzero()) for t in y[b, 1:]]
        assert pos == sorted(set(pos))
    assert patch_dropout(x, 0.0) is x


def test_vit_forward_equals_hugging_face(vit):
    from paperloom_clip.model import to_hf

    vit.eval()
    hf = to_hf(vit).eval()
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        ours = vit.encode_image(x, drop=0.75)  # eval: no dropping
        theirs = hf.get_image_features(pixel_values=(x - vit.mean) / vit.std).pooler_output
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def grads(module, batch):
    module.zero_grad()
    loss = module.losses(batch)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in module.model.named_parameters() if p.grad is not None}


def test_flip_ratio_zero_equals_clip_exactly(vit, batch):
    clip = ContrastiveModule(vit, StrategyConfig(name="clip"))
    flip = ContrastiveModule(copy.deepcopy(vit), StrategyConfig(name="flip", flip_ratio=0.0))
    (l1, g1), (l2, g2) = grads(clip, batch), grads(flip, batch)
    assert torch.equal(l1, l2) and g1.keys() == g2.keys()
    assert all(torch.equal(g1[k], g2[k]) for k in g1)


def test_flip_in_eval_equals_clip_and_drops_in_training(vit, batch):
    flip = ContrastiveModule(vit, StrategyConfig(name="flip", flip_ratio=0.75))
    assert flip.drop_ratio() == 0.75
    vit.eval()
    with torch.no_grad():
        assert torch.equal(vit.encode_image(batch["image"], flip.drop_ratio()), vit.encode_image(batch["image"]))
    vit.train()
    torch.manual_seed(0)
    with torch.no_grad():
        dropped = vit.encode_image(batch["image"], 0.75)
    assert not torch.allclose(dropped, vit.encode_image(batch["image"]))


def test_unmasked_tuning_switches_off_the_masking(vit):
    flip = ContrastiveModule(vit, StrategyConfig(name="flip", flip_ratio=0.5, unmasked_steps=3), total_steps=10)
    assert [flip.drop_ratio(step) for step in (0, 6, 7, 9)] == [0.5, 0.5, 0.0, 0.0]
    assert ContrastiveModule(vit, StrategyConfig(name="clip"), total_steps=10).drop_ratio(0) == 0.0
