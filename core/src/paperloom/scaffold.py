"""`core new NAME`: a plugin package that installs, lists and passes `core check` as generated."""

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
requires-python = ">=3.10"
dependencies = ["paperloom>={major_minor},<{next_minor}", "torch>=2.4"]

[project.entry-points."paperloom.plugins"]
{name} = "{pkg}.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
{pkg} = ["configs/*.yaml"]
""",
    "README.md": """# paperloom-{name}

A paperloom plugin. Install with `pip install -e .`, then `core list`, `core info {name}:demo`,
`core run {name}:demo` and `core check {name}`.

Replace the demo in `src/{pkg}/` with your paper: keep `plugin.py` declarations only (no heavy
imports), put the model in `model.py`, the recipe in `train.py`, options in `config.py` and
defaults in `configs/*.yaml`.
""",
    "src/{pkg}/__init__.py": '"""paperloom plugin {name}."""\n',
    "src/{pkg}/plugin.py": '''"""Declarations only: importing this module must stay cheap (no torch)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl


@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="{name}: a linear model fitted by gradient descent (template)",
                      requires=Requirements(packages=("torch>=2.4",)))


@hookimpl
def paperloom_components():
    return [Component("linear", "model", "{pkg}.model:build_model", "a linear regression model",
                      produces=("regressor",))]


@hookimpl
def paperloom_tasks():
    return [Task("demo", "{pkg}.train:demo", "{pkg}.config:DemoConfig", config="configs/demo.yaml",
                 summary="fit y = 3x - 1 with noise", smoke={{"steps": 20}},
                 verify=(Check("final_loss", "<", other="initial_loss", summary="training lowers the loss"),))]
''',
    "src/{pkg}/config.py": """from dataclasses import dataclass

from paperloom.config import option


@dataclass
class DemoConfig:
    model: str = option("{name}:linear", help="regressor component", component="model", contract="regressor")
    steps: int = option(200, help="gradient steps")
    lr: float = option(0.1, help="learning rate")
    samples: int = option(256, help="generated training points")
""",
    "src/{pkg}/model.py": """import torch


def build_model(features: int = 1) -> torch.nn.Module:
    return torch.nn.Linear(features, 1)
""",
    "src/{pkg}/train.py": """import torch


def demo(cfg, ctx):
    x = torch.randn(cfg.samples, 1)
    y = 3 * x - 1 + 0.1 * torch.randn_like(x)
    model = ctx.build(cfg.model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    initial = float(torch.nn.functional.mse_loss(model(x), y))
    for step in ctx.progress(range(cfg.steps), description="fit"):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            ctx.log_metrics({{"train_loss": float(loss)}}, step=step)
    final = float(torch.nn.functional.mse_loss(model(x), y))
    ctx.log.info(f"loss {{initial:.3f}} -> {{final:.3f}}")
    return {{"initial_loss": initial, "final_loss": final}}
""",
    "src/{pkg}/configs/demo.yaml": "steps: 200\nlr: 0.1\n",
    "tests/test_plugin.py": """from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("{name}")
""",
}


def scaffold(name: str, parent: Path) -> Path:
    if not re.match(r"^[a-z][a-z0-9-]*$", name):
        raise UserError(f"plugin name {name!r}: use lowercase letters, digits and '-' (e.g. my-paper)")
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
