"""`core new NAME`: a plugin package in the shape every plugin shares (docs/plugins.md) that installs,
lists and passes `core check` as generated."""

from __future__ import annotations

import re
from pathlib import Path

from . import __version__
from .errors import UserError

FILES = {
    "pyproject.toml": """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "paperloom-{name}"
version = "0.1.0"
description = "paperloom plugin: {name}"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["paperloom-core>={major_minor},<{next_minor}", "torch>=2.4"]

[project.optional-dependencies]
test = ["pytest>=7"]

[project.entry-points."paperloom.plugins"]
{name} = "{pkg}.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
{pkg} = ["configs/*.yaml", "configs/*/*.yaml"]
""",
    "README.md": """# paperloom-{name}

A paperloom plugin (replace with: paper citation and link, e.g. *Author et al., Title, arXiv 2404.xxxxx*).

`pip install -e .`, then `core list`, `core info {name}:demo`, `core run {name}:demo`, `core check {name}`.

| component | module | paper section |
| --- | --- | --- |
| `{name}:linear` (model, `regressor`) | `model.py` | (the paper's section) |

## Tasks

- `{name}:demo`: fit y = 3x - 1 with noise by gradient descent (resumable); verify: the loss falls.
  Options: `core info {name}:demo`; presets: `configs/demo/*.yaml` (`--config tiny`).

## Measured

(the demo's output, the benchmark's ratios and the machine)

## Deviations from the paper

(none yet)
""",
    "src/{pkg}/__init__.py": '"""paperloom plugin {name}."""\n',
    "src/{pkg}/plugin.py": '''"""Declarations only: importing this module must stay cheap (no torch)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

PKG = "{pkg}"


@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="{name}: a linear model fitted by gradient descent (template)",
                      requires=Requirements(packages=("torch>=2.4",)))


@hookimpl
def paperloom_components():
    return [Component("linear", "model", f"{{PKG}}.components:build_linear", "a linear regression model",
                      produces=("regressor",))]


@hookimpl
def paperloom_tasks():
    return [Task("demo", f"{{PKG}}.tasks:demo", f"{{PKG}}.config:DemoConfig",
                 summary="fit y = 3x - 1 with noise", smoke={{"steps": 20}},
                 verify=(Check("final_loss", "<", other="initial_loss", summary="the loss falls"),))]
''',
    "src/{pkg}/config.py": '''"""Task schemas (plain dataclasses, no torch); values: configs/<task>.yaml."""

from dataclasses import dataclass

from paperloom.config import option


@dataclass
class DemoConfig:
    """Fit a regressor to generated data by gradient descent."""

    model: str = option("{name}:linear", help="regressor component", component="model", contract="regressor")
    steps: int = option(200, help="gradient steps")
    lr: float = option(0.1, help="learning rate")
    samples: int = option(256, help="generated training points")
''',
    "src/{pkg}/model.py": '''"""The architecture, top to bottom."""

import torch


class Linear(torch.nn.Module):
    """y = w x + b."""

    def __init__(self, features: int = 1) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, 1)
        return self.proj(x)
''',
    "src/{pkg}/components.py": '''"""Builders of every component plugin.py names: builder(ctx, **kwargs)."""

from .model import Linear


def build_linear(ctx, features: int = 1) -> Linear:
    return Linear(features)
''',
    "src/{pkg}/tasks.py": '''"""Task functions fn(cfg, ctx) -> metrics."""

import torch

from paperloom.checkpoint import Checkpoint


def demo(cfg, ctx):
    g = torch.Generator().manual_seed(ctx.seed)
    x = torch.randn(cfg.samples, 1, generator=g)
    y = 3 * x - 1 + 0.1 * torch.randn(x.shape, generator=g)
    model = ctx.build(cfg.model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    initial = float(torch.nn.functional.mse_loss(model(x), y))
    ckpt = Checkpoint(ctx)
    step = ckpt.restore(model, opt)  # continues a killed run under --resume
    for step in ctx.progress(range(step, cfg.steps), description="fit"):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 10 == 0:
            ctx.log_metrics({{"train_loss": float(loss)}}, step=step + 1)
            ckpt.save(step + 1, model, opt)
    final = float(torch.nn.functional.mse_loss(model(x), y))
    ctx.log.info(f"loss {{initial:.3f}} -> {{final:.3f}}")
    return {{"initial_loss": initial, "final_loss": final}}
''',
    "src/{pkg}/configs/demo.yaml": "# {name}:demo defaults\nsteps: 200\nlr: 0.1\nsamples: 256\n",
    "src/{pkg}/configs/demo/tiny.yaml": "# a seconds-long run: core run {name}:demo --config tiny\nsteps: 20\n",
    "tests/test_plugin.py": '''import torch

from paperloom.testing import assert_conforms
from {pkg}.model import Linear


def test_linear_matches_the_formula():
    model = Linear(2)
    x = torch.randn(5, 2)
    expected = x @ model.proj.weight.T + model.proj.bias
    assert torch.allclose(model(x), expected)


def test_conforms():
    assert_conforms("{name}")
''',
    "benchmarks/README.md": "Benchmarks of {name}'s hot path side by side with its baseline (`nox -s benchmarks`).\n",
}


def scaffold(name: str, parent: Path) -> Path:
    if not re.match(r"^[a-z][a-z0-9-]*$", name):
        raise UserError(f"plugin name {name!r}: use lowercase letters, digits and '-' (e.g. my-paper)")
    from .plugins import BUILTIN_NAME

    if name == BUILTIN_NAME:
        raise UserError(f"plugin name {name!r} is reserved for the core's built-in plugin; choose another name")
    root = parent / name
    if root.exists():
        raise UserError(f"{root} already exists; choose another name or --dir")
    major, minor = __version__.split(".")[:2]
    values = {
        "name": name,
        "pkg": "paperloom_" + name.replace("-", "_"),
        "major_minor": f"{major}.{minor}",
        "next_minor": f"{major}.{int(minor) + 1}",
    }
    for rel, text in FILES.items():
        path = root / rel.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**values))
    return root
