"""The paperloom contract, part 1 of 2: the hooks a plugin implements.

A plugin is a module named by an entry point in the group ``paperloom.plugins``; the entry
point's name is the plugin's name (``megalodon``). The module implements some of these hooks
with ``@paperloom.hookimpl`` and must import nothing heavy (no torch): the core imports it to
*list* plugins. Declarations hold lazy references that are imported only when used. The core
calls every hook through pluggy, so only functions marked ``@hookimpl`` count.

Part 2 is `interfaces.py` (the declaration dataclasses and protocols). The examples below are
the core's own built-in plugin (`paperloom.builtin`), which registers through these same hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from .interfaces import Component, PluginInfo, Task

hookspec = pluggy.HookspecMarker("paperloom")


@hookspec(firstresult=True)
def paperloom_plugin() -> PluginInfo:
    """Describe the plugin. Called once per plugin when the core discovers it.

    Return a `PluginInfo`: summary, paper citation and link, and `Requirements` that
    ``core doctor`` checks. Example::

        @hookimpl
        def paperloom_plugin():
            return PluginInfo(summary="a regression toy", requires=Requirements(packages=("torch>=2.4",)))
    """


@hookspec(firstresult=True)
def paperloom_components() -> list[Component]:
    """Declare the models, datasets and evaluators this plugin offers.

    Called once per plugin at discovery; return a list of `Component`. Names must be unique
    within the plugin; other plugins and configs use them as ``plugin:name``. Every builder
    lives in the plugin's ``components.py``. Example::

        @hookimpl
        def paperloom_components():
            return [Component("mlp", "model", "paperloom.builtin.components:build_mlp",
                              produces=("regressor",), defaults={"hidden": 32})]
    """


@hookspec(firstresult=True)
def paperloom_tasks() -> list[Task]:
    """Declare the tasks this plugin offers (``core run plugin:task``).

    Called once per plugin at discovery; return a list of `Task`. Every plugin has a ``demo``
    task that runs on an embedded default in a few minutes on CPU; task functions live in
    ``tasks.py`` (or ``demo.py``), schemas in ``config.py``. Example::

        @hookimpl
        def paperloom_tasks():
            return [Task("demo", "paperloom.builtin.tasks:fit", "paperloom.builtin.config:FitConfig",
                         smoke={"trainer.max_steps": 4},
                         verify=(Check("val_loss", "<", other="init_val_loss"),))]
    """


@hookspec
def paperloom_run_finished(plugin: str, task: str, out: str, metrics: Mapping[str, Any]) -> None:
    """Observe a finished run (all plugins are called; return values are ignored).

    Called after any task of any plugin has written ``metrics.json`` into folder ``out``. Use it
    for cross-cutting features (upload results, notify). Example::

        @hookimpl
        def paperloom_run_finished(plugin, task, out, metrics):
            print(f"{plugin}:{task} -> {out}: {metrics}")
    """
