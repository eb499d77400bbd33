"""The conformance kit: checks every plugin (ours and third parties') must pass.

Use from a plugin's tests::

    from paperloom.testing import assert_conforms
    def test_conforms():
        assert_conforms("megalodon")

or from the shell: ``core check megalodon``. ``registry_with(...)`` builds a registry holding
only the plugins a test names, so tests do not depend on what happens to be installed.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path
from types import ModuleType

from .plugins import Registry, discover


def registry_with(*modules: tuple[str, ModuleType | str], entry_points: bool = False) -> Registry:
    """A registry of the built-in plugin plus (name, module) pairs; installed plugins ignored by default."""
    reg = discover(entry_points=entry_points)
    for name, module in modules:
        reg.add_module(name, module)
    return reg


def check_plugin(name: str, run_demo: bool = True, reg: Registry | None = None) -> list[tuple[str, bool, str]]:
    """Run every conformance check on plugin `name`; returns (check, passed, message) rows."""
    from .run import execute, load_ref, resolve_task_config

    reg = reg or discover()
    results: list[tuple[str, bool, str]] = []

    def record(label: str, fn) -> bool:
        try:
            msg = fn() or ""
            results.append((label, True, msg))
            return True
        except Exception as exc:  # report and go on: the kit lists every failure at once
            results.append((label, False, f"{type(exc).__name__}: {exc}".strip()))
            return False

    plugin = reg.plugins.get(name)
    if plugin is None:
        return [("discovered", False, f"no plugin {name!r} installed (entry point group paperloom.plugins)")]
    if plugin.error:
        return [("discovered", False, plugin.error)]
    results.append(("discovered", True, f"{plugin.distribution} {plugin.version}".strip()))

    def declarations():
        if not plugin.info or not plugin.info.summary:
            raise ValueError("paperloom_plugin() must return PluginInfo with a summary")
        if "demo" not in plugin.tasks:
            raise ValueError("every plugin needs a 'demo' task")
        return f"{len(plugin.components)} components, {len(plugin.tasks)} tasks"

    record("declarations", declarations)
    for c in plugin.components.values():
        record(f"component {c.name} resolves", lambda c=c: load_ref(c.builder) and None)
    for t in plugin.tasks.values():
        ok = record(f"task {t.name} resolves", lambda t=t: (load_ref(t.run), load_ref(t.schema)) and None)
        if not ok:
            continue
        if t.config and not (plugin.root / t.config).is_file():
            results.append((f"task {t.name} config", False, f"{plugin.root / t.config} is missing"))
            continue
        record(
            f"task {t.name} default config validates", lambda t=t: resolve_task_config(reg, f"{name}:{t.name}") and None
        )
        record(
            f"task {t.name} smoke config validates",
            lambda t=t: resolve_task_config(reg, f"{name}:{t.name}", smoke=True) and None,
        )
    if run_demo and "demo" in plugin.tasks:

        def demo():
            with tempfile.TemporaryDirectory() as tmp:
                out, metrics = execute(
                    f"{name}:demo", out=Path(tmp) / "run", smoke=True, device="cpu", reg=reg, plot=False
                )
                if not (out / "metrics.json").is_file():
                    raise AssertionError("the demo wrote no metrics.json")
                numbers = [k for k, v in metrics.items() if isinstance(v, (int, float))]
                if not numbers:
                    raise AssertionError("the demo's metrics.json holds no numbers")
                return f"{len(numbers)} metrics"

        def demo_traced():
            try:
                return demo()
            except Exception:
                traceback.print_exc()
                raise

        record("demo runs on CPU (smoke)", demo_traced)
    return results


def assert_conforms(name: str, run_demo: bool = True, reg: Registry | None = None) -> None:
    """Fail with every broken check listed when plugin `name` does not conform."""
    failed = [f"{label}: {msg}" for label, ok, msg in check_plugin(name, run_demo, reg) if not ok]
    assert not failed, f"plugin {name!r} does not conform:\n  " + "\n  ".join(failed)
