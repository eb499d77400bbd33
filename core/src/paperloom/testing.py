"""The conformance kit: checks every plugin (ours and third parties') must pass.

Use from a plugin's tests::

    from paperloom.testing import assert_conforms
    def test_conforms():
        assert_conforms("megalodon")

or from the shell: ``core check megalodon``. It checks the one plugin shape (docs/plugins.md), that
``plugin.py`` and ``config.py`` import no heavy library, that every shipped YAML validates against the
schema its path implies, that the demo runs on CPU at smoke size and that every trainable parameter of
every model the demo builds changes. ``registry_with(...)`` builds a registry holding only the plugins
a test names, so tests do not depend on what happens to be installed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from .plugins import Plugin, Registry, discover

HEAVY = ("torch", "lightning", "transformers", "trl", "numpy", "triton", "torchvision", "matplotlib")
# Where each lazy reference must point, by module (relative to the plugin's package).
TASK_MODULES = ("tasks", "demo")
SCHEMA_MODULE = "config"
BUILDER_MODULE = "components"
Result = tuple[str, bool, str]


def registry_with(*modules: tuple[str, ModuleType | str], entry_points: bool = False) -> Registry:
    """A registry of the built-in plugin plus (name, module) pairs; installed plugins ignored by default."""
    reg = discover(entry_points=entry_points)
    for name, module in modules:
        reg.add_module(name, module)
    return reg


def _package(plugin: Plugin) -> str:
    return plugin.module.rpartition(".")[0]


def check_layout(plugin: Plugin) -> str:
    """The shared shape: declaration, schema, builder and task modules where the references point."""
    pkg, root = _package(plugin), plugin.root
    if root is None:
        raise ValueError(f"{plugin.module} has no folder on disk")
    if Path(plugin.module.replace(".", "/")).name != "plugin":
        raise ValueError(f"the entry point names {plugin.module}; it must be {pkg}.plugin (declarations only)")
    need = ["config.py", "tasks.py"] + (["components.py"] if plugin.components else [])
    missing = [f for f in need if not (root / f).is_file()]
    if missing:
        raise ValueError(f"{root} lacks {', '.join(missing)}")
    wrong = []
    for t in plugin.tasks.values():
        if t.run.partition(":")[0] not in {f"{pkg}.{m}" for m in TASK_MODULES}:
            wrong.append(f"task {t.name} run {t.run} (expected {pkg}.tasks or {pkg}.demo)")
        if t.schema.partition(":")[0] != f"{pkg}.{SCHEMA_MODULE}":
            wrong.append(f"task {t.name} schema {t.schema} (expected {pkg}.config)")
        if plugin.config_file(t.name) is None:
            wrong.append(f"task {t.name} has no configs/{t.name}.yaml")
    for c in plugin.components.values():
        if c.builder.partition(":")[0] != f"{pkg}.{BUILDER_MODULE}":
            wrong.append(f"component {c.name} builder {c.builder} (expected {pkg}.components)")
    stray = [p.name for p in (root / "configs").glob("*.yaml") if p.stem not in plugin.tasks]
    stray += [p.name + "/" for p in (root / "configs").glob("*") if p.is_dir() and p.name not in plugin.tasks]
    if stray:
        wrong.append(f"configs/{', configs/'.join(sorted(stray))} name no task (configs/<task>.yaml, "
                     "configs/<task>/<preset>.yaml)")
    if wrong:
        raise ValueError("; ".join(wrong))
    dist_root = root.parent.parent  # src/<package>/ in a source checkout
    if (dist_root / "pyproject.toml").is_file():
        absent = [f for f in ("README.md", "tests") if not (dist_root / f).exists()]
        if absent:
            raise ValueError(f"{dist_root} lacks {', '.join(absent)}")
    return f"{len(plugin.tasks)} tasks, {len(plugin.components)} components in {pkg}"


def check_light_imports(plugin: Plugin) -> str:
    """Importing plugin.py and config.py (what `core list` / `core info` do) pulls in no heavy library."""
    pkg = _package(plugin)
    code = (
        f"import sys, {pkg}.plugin, {pkg}.config; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise ValueError(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "import failed")
    heavy = res.stdout.strip()
    if heavy:
        raise ValueError(f"importing {pkg}.plugin and {pkg}.config imports {heavy}; move those imports into "
                         "the functions that need them")
    return ""


def shipped_configs(plugin: Plugin) -> list[tuple[str, Path | None, Path]]:
    """(task, preset name or None, file) for every YAML under configs/ whose path names a task."""
    out = []
    for name in plugin.tasks:
        default = plugin.config_file(name)
        if default:
            out.append((name, None, default))
        out += [(name, preset, path) for preset, path in plugin.presets(name).items()]
    return out


def check_plugin(name: str, run_demo: bool = True, reg: Registry | None = None) -> list[Result]:
    """Run every conformance check on plugin `name`; returns (check, passed, message) rows."""
    from .context import load_ref
    from .runner import resolve_task_config

    reg = reg or discover()
    results: list[Result] = []

    def record(label: str, fn: Callable[[], str | None]) -> bool:
        try:
            results.append((label, True, fn() or ""))
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

    def declarations() -> str:
        if not plugin.info or not plugin.info.summary:
            raise ValueError("paperloom_plugin() must return PluginInfo with a summary")
        if "demo" not in plugin.tasks:
            raise ValueError("every plugin needs a 'demo' task")
        return f"{len(plugin.components)} components, {len(plugin.tasks)} tasks"

    record("declarations", declarations)
    record("layout", lambda: check_layout(plugin))
    record("plugin.py and config.py import nothing heavy", lambda: check_light_imports(plugin))
    for c in plugin.components.values():
        record(f"component {c.name} resolves", lambda c=c: load_ref(c.builder) and None)
    for t in plugin.tasks.values():
        if not record(f"task {t.name} resolves", lambda t=t: (load_ref(t.run), load_ref(t.schema)) and None):
            continue
        record(f"task {t.name} smoke config validates",
               lambda t=t: resolve_task_config(reg, f"{name}:{t.name}", smoke=True) and None)
    for task, preset, _ in shipped_configs(plugin):
        label = f"configs/{task}.yaml validates" if preset is None else f"configs/{task}/{preset}.yaml validates"
        record(label, lambda task=task, preset=preset: resolve_task_config(reg, f"{name}:{task}", preset) and None)
    if run_demo and "demo" in plugin.tasks:
        record("demo runs on CPU (smoke); every trainable parameter of its models changes", lambda: _demo(reg, name))
    return results


def _demo(reg: Registry, name: str) -> str:
    from .runner import execute

    watch: list = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out, metrics = execute(f"{name}:demo", reg=reg, out=Path(tmp) / "run", smoke=True, device="cpu",
                                   plot=False, watch=watch)
            if not (out / "metrics.json").is_file():
                raise AssertionError("the demo wrote no metrics.json")
    except Exception:
        traceback.print_exc()
        raise
    numbers = [k for k, v in metrics.items() if isinstance(v, (int, float))]
    if not numbers:
        raise AssertionError("the demo's metrics.json holds no numbers")
    if not watch:
        raise AssertionError("the demo built no model through ctx.build (build models by name so users can swap them)")
    frozen = []
    for ref, model, before in watch:
        after = dict(model.named_parameters())
        frozen += [f"{ref}:{n}" for n, p in before.items() if n in after and bool((after[n].detach().cpu() ==
                                                                                    p.cpu()).all())]
    if frozen:
        raise AssertionError(f"{len(frozen)} trainable parameter(s) did not change in the smoke run: "
                             f"{', '.join(frozen[:6])}{' ...' if len(frozen) > 6 else ''}")
    return f"{len(numbers)} metrics, {len(watch)} model(s) built, all trainable parameters changed"


def assert_conforms(name: str, run_demo: bool = True, reg: Registry | None = None) -> None:
    """Fail with every broken check listed when plugin `name` does not conform."""
    failed = [f"{label}: {msg}" for label, ok, msg in check_plugin(name, run_demo, reg) if not ok]
    assert not failed, f"plugin {name!r} does not conform:\n  " + "\n  ".join(failed)


# --------------------------------------------------------------------------- tests that start servers (Ray)


def in_loopback_namespace() -> bool:
    """Is this process in a network namespace whose only interface is the loopback one? (if_nameindex asks the
    kernel about this process's namespace; /sys/class/net would show the namespace sysfs was mounted in.)"""
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


def run_in_loopback_namespace(nodeid: str, rootdir: str | Path, timeout: float = 600) -> bool:
    """For a test that starts servers (a local Ray cluster listens on every interface): returns True when the
    caller is already in a loopback-only network namespace (go on with the test); otherwise runs the test
    `nodeid` again in a fresh one (``unshare --net``, loopback up), asserts that it passed and returns False
    (the caller returns). Skips when namespaces cannot be made here. Nothing the servers do leaves the machine."""
    import os
    import shutil

    import pytest

    if in_loopback_namespace():
        return True
    if os.environ.get("PAPERLOOM_IN_NETNS"):  # never recurse: we were started in a namespace and it is not one
        pytest.fail("the loopback-only network namespace has other interfaces")
    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs `unshare` and `ip` (util-linux, iproute2) to run in a loopback-only network namespace")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here ({probe.stderr.decode().strip()[:120]})")
    cmd = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, "-m", "pytest",
           "-q", "-p", "no:cacheprovider", nodeid]
    env = {**os.environ, "PAPERLOOM_IN_NETNS": "1"}
    res = subprocess.run(cmd, cwd=rootdir, capture_output=True, text=True, timeout=timeout, env=env)
    shown = f"{nodeid} in a loopback-only namespace:\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}"
    assert res.returncode == 0 and " passed" in res.stdout and "skipped" not in res.stdout, shown
    return False
