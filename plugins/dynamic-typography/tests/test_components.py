"""Components compose by name: another plugin's guidance drives `animate`; a component with the wrong
contract is refused before anything heavy runs."""

import sys
import types

import pytest
import torch

from paperloom import Component, PluginInfo, UserError, hookimpl
from paperloom.runner import execute
from paperloom.testing import registry_with

TINY = ["size=32", "frames=3", "steps=3", "control_points=24", "model_args={inter_dim: 8, embed_dim: 4}",
        "word=AB", "letter=1"]


class ShiftRight:
    """Another plugin's guidance: every frame should be the base frame moved 4 pixels to the right."""

    name, disclosure = "shift-right", "guidance: a test plugin's shift-right target"

    def __call__(self, frames, base, step):
        return ((frames - torch.roll(base.detach(), 4, -1)[None]) ** 2).mean() * 1e3


@pytest.fixture
def reg():
    fake = types.ModuleType("fakeguide_plugin")
    fake.build = lambda ctx, prompt="", **kw: ShiftRight()
    fake.paperloom_plugin = hookimpl(lambda: PluginInfo(summary="a guidance from another plugin"))
    fake.paperloom_components = hookimpl(lambda: [Component("shift", "model", "fakeguide_plugin:build",
                                                            produces=("video-guidance",))])
    sys.modules["fakeguide_plugin"] = fake
    yield registry_with(("dynamic-typography", "paperloom_dynamic_typography.plugin"), ("fakeguide", fake))
    del sys.modules["fakeguide_plugin"]


def test_another_plugins_guidance_drives_animate(reg, tmp_path):
    out, m = execute("dynamic-typography:animate", overrides=[*TINY, "guidance=fakeguide:shift", "steps=20"],
                     out=tmp_path / "a", device="cpu", plot=False, reg=reg)
    assert m["guidance_is_local"] == 1.0  # not SDS
    assert "shift-right" in (out / "svg" / "word_000.svg").read_text()
    import json

    pts = json.loads((out / "points.json").read_text())
    dx = torch.tensor(pts["frames"])[..., 0].mean() - torch.tensor(pts["base"])[..., 0].mean()
    assert float(dx) > 0.05  # the frames moved right (20 small warm-up steps), as that guidance asks


def test_wrong_contract_is_refused(reg, tmp_path):
    with pytest.raises(UserError, match="video-guidance"):
        execute("dynamic-typography:animate", overrides=[*TINY, "guidance=core:mlp"], out=tmp_path / "b",
                device="cpu", plot=False, reg=reg)
