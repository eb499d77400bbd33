"""Declarations of the built-in plugin `core` (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from .. import Check, Component, PluginInfo, Requirements, Task, hookimpl
from ..contracts import REGRESSION_PAIRS, REGRESSOR, REGRESSOR_WEIGHTS

PKG = "paperloom.builtin"


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="built-in regression toy: an MLP fitted with Lightning (exercises runs, resume and scale-out)",
        requires=Requirements(packages=("torch>=2.4", "lightning>=2.4", "safetensors>=0.4")),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        Component("mlp", "model", f"{PKG}.components:build_mlp", "a small MLP regressor (hidden, layers)",
                  produces=(REGRESSOR,)),
        Component("regression", "dataset", f"{PKG}.components:build_regression",
                  "generated y = sin(3 w.x) + noise pairs (n, features, noise, split)", produces=(REGRESSION_PAIRS,)),
        Component("mse", "evaluator", f"{PKG}.components:build_mse", "mean squared error of a regressor",
                  consumes=(REGRESSOR, REGRESSION_PAIRS)),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    smoke = {"trainer.max_steps": 4, "trainer.val_every": 2, "trainer.checkpoint_every": 2, "trainer.log_every": 1,
             "data.n": 256, "model_args": {"hidden": 16}}
    claim = (Check("val_loss", "<", other="init_val_loss", summary="training lowers the held-out error"),)
    return [
        Task("fit", f"{PKG}.tasks:fit", f"{PKG}.config:FitConfig",
             summary="fit any regressor component with Lightning (resumable, any strategy)", smoke=smoke,
             artifacts={"model.safetensors": REGRESSOR_WEIGHTS}),
        Task("demo", f"{PKG}.tasks:fit", f"{PKG}.config:FitConfig",
             summary="fit the MLP on generated data: held-out error falls", smoke=smoke, verify=claim),
    ]
