"""Discovery: find plugins through entry points, check them, isolate the broken ones.

Nothing here imports torch. A plugin's declaration module is imported only after its
distribution's declared ``paperloom`` version range has been checked against this core.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pluggy

from . import __version__, hookspecs
from .errors import UserError, suggest
from .interfaces import CHECK_OPS, GPU_NEEDS, KINDS, Check, Component, PluginInfo, Task

ENTRY_POINT_GROUP = "paperloom.plugins"
DISABLE_ENV = "PAPERLOOM_DISABLE_PLUGINS"  # "1"/"all": ignore installed plugins; or "a,b": skip these
BUILTIN_NAME = "core"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass
class Plugin:
    """One discovered plugin: its declarations, or why it is broken."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    root: Path | None = None  # the declaration module's folder: configs/<task>.yaml and presets live below it
    info: PluginInfo | None = None
    components: dict[str, Component] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    error: str | None = None

    def config_file(self, task: str) -> Path | None:
        """``configs/<task>.yaml``: the task's default values (None when the plugin ships none)."""
        path = self.root / "configs" / f"{task}.yaml" if self.root else None
        return path if path is not None and path.is_file() else None

    def presets(self, task: str) -> dict[str, Path]:
        """``configs/<task>/<preset>.yaml`` by preset name (``--config paper``)."""
        folder = self.root / "configs" / task if self.root else None
        if folder is None or not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


CORE_DISTRIBUTION = "paperloom-core"
_REQ_RE = re.compile(r"^\s*paperloom[-_.]core\s*(\[[^\]]*\])?\s*(?P<spec>[^;]*)(;(?P<marker>.*))?$", re.I)
_SIMPLE_SPEC = re.compile(r"^(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)$")


@dataclass
class DistFacts:
    """What discovery needs from a distribution's METADATA, read in one pass (importlib.metadata parses the
    whole file with the email package once per field asked: 3 parses per plugin on `core list`)."""

    name: str = "?"
    version: str = ""
    requires: tuple[str, ...] = ()


_HEADER = re.compile(r"^(Name|Version|Requires-Dist):[ \t]*(.*?)\s*$", re.M)


def dist_facts(dist: md.Distribution | None) -> DistFacts:
    if dist is None:
        return DistFacts()
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    head = text.split("\n\n", 1)[0]  # the headers end at the first blank line; the description follows
    facts = DistFacts(requires=())
    reqs = []
    for key, value in _HEADER.findall(head):
        if key == "Name":
            facts.name = value
        elif key == "Version":
            facts.version = value
        else:
            reqs.append(value)
    facts.requires = tuple(reqs)
    return facts


def _core_range(dist: md.Distribution | DistFacts | None) -> str | None:
    """The version range a distribution declares for `paperloom-core` (Requires-Dist), if any."""
    if dist is None:
        return None
    for line in dist.requires or ():
        m = _REQ_RE.match(line)
        if m and "extra" not in (m.group("marker") or ""):
            return m.group("spec").strip().strip("()") or None
    return None


def _declares_old_name(dist: md.Distribution | DistFacts | None) -> bool:
    """True when a plugin depends on `paperloom`: an unrelated PyPI package (the core is paperloom-core)."""
    return dist is not None and any(re.match(r"^\s*paperloom\s*($|[\[<>=!~;(])", r) for r in dist.requires or ())


def _release(v: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in v.split("."))
    return parts + (0,) * (4 - len(parts))


def _simple_contains(spec: str, version: str) -> bool | None:
    """`version in spec` for plain numeric specifiers (``>=0.2,<0.3``) without importing packaging
    (it costs `core list` ~10 ms); None when the spec needs packaging's full grammar."""
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return None
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
           "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
    ok = True
    for part in spec.split(","):
        m = _SIMPLE_SPEC.match(part.strip())
        if not m:
            return None
        ok = ok and ops[m.group(1)](_release(version), _release(m.group(2)))
    return ok


def check_compatible(spec: str | None, version: str = __version__) -> str | None:
    """An error message when core `version` is outside `spec`, else None."""
    if not spec:
        return None
    inside = _simple_contains(spec, version)
    if inside is None:
        from packaging.specifiers import SpecifierSet

        inside = version in SpecifierSet(spec, prereleases=True)
    if inside:
        return None
    return f"requires {CORE_DISTRIBUTION}{spec}, but this core is {version}; install a matching plugin or core version"


def _validate(plugin: Plugin, info: Any, components: list, tasks: list) -> None:
    """Check hook results; raise ValueError naming what is malformed."""
    if info is not None and not isinstance(info, PluginInfo):
        raise ValueError(f"paperloom_plugin() returned {type(info).__name__}, expected PluginInfo")
    if info is not None and info.requires.gpu not in GPU_NEEDS:
        raise ValueError(f"requires.gpu is {info.requires.gpu!r}, expected one of {GPU_NEEDS}")
    for c in components:
        if not isinstance(c, Component):
            raise ValueError(f"paperloom_components() returned {type(c).__name__}, expected Component")
        if not NAME_RE.match(c.name):
            raise ValueError(f"component name {c.name!r} must match {NAME_RE.pattern}")
        if c.kind not in KINDS:
            raise ValueError(f"component {c.name!r} has kind {c.kind!r}, expected one of {KINDS}")
        if not REF_RE.match(c.builder):
            raise ValueError(f"component {c.name!r} builder {c.builder!r} is not 'module:attribute'")
        if c.name in plugin.components:
            raise ValueError(f"component {c.name!r} is declared twice")
        plugin.components[c.name] = c
    for t in tasks:
        if not isinstance(t, Task):
            raise ValueError(f"paperloom_tasks() returned {type(t).__name__}, expected Task")
        if not NAME_RE.match(t.name):
            raise ValueError(f"task name {t.name!r} must match {NAME_RE.pattern}")
        for ref in (t.run, t.schema):
            if not REF_RE.match(ref):
                raise ValueError(f"task {t.name!r} reference {ref!r} is not 'module:attribute'")
        for check in t.verify:
            if (
                not isinstance(check, Check)
                or check.op not in CHECK_OPS
                or (check.value is None) == (check.other is None)
            ):
                raise ValueError(f"task {t.name!r} has a malformed verify check {check!r}")
        if t.name in plugin.tasks:
            raise ValueError(f"task {t.name!r} is declared twice")
        plugin.tasks[t.name] = t


class Registry:
    """All plugins known to this process, healthy and broken, with name look-ups."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("paperloom")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, Plugin] = {}

    # -- loading
    def add_module(self, name: str, module: ModuleType | str, distribution: str = "", version: str = "") -> Plugin:
        """Register a declaration module under `name`; a failure marks the plugin broken."""
        modname = module if isinstance(module, str) else module.__name__
        plugin = Plugin(name=name, module=modname, distribution=distribution, version=version)
        self.plugins[name] = plugin
        try:
            mod = importlib.import_module(module) if isinstance(module, str) else module
            plugin.root = Path(mod.__file__).parent if getattr(mod, "__file__", None) else None
            self.pm.register(mod, name=name)
            hook = self._own_hooks(name)
            info = hook.paperloom_plugin()
            components = hook.paperloom_components()
            tasks = hook.paperloom_tasks()
            _validate(plugin, info, list(components or []), list(tasks or []))
            plugin.info = info or PluginInfo(summary="")
        except Exception as exc:  # an isolated plugin must never take the host down
            plugin.error = f"{type(exc).__name__}: {exc}"
            plugin.components.clear()
            plugin.tasks.clear()
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
        return plugin

    def _own_hooks(self, name: str) -> Any:
        """The declaration hooks of plugin `name` alone, called through pluggy (only @hookimpl functions count)."""
        others = [p for n, p in self.pm.list_name_plugin() if n != name]
        hooks = ("paperloom_plugin", "paperloom_components", "paperloom_tasks")
        return SimpleNamespace(**{h: self.pm.subset_hook_caller(h, remove_plugins=others) for h in hooks})

    def broken(self, name: str, reason: str, module: str = "", distribution: str = "", version: str = "") -> None:
        if self.pm.has_plugin(name):  # e.g. the first of two distributions claiming one name
            self.pm.unregister(name=name)
        self.plugins[name] = Plugin(name, module, distribution, version, error=reason)

    # -- look-ups
    def healthy(self) -> list[Plugin]:
        return [p for p in self.plugins.values() if p.error is None]

    def plugin(self, name: str) -> Plugin:
        if name not in self.plugins:
            raise UserError(
                f"unknown plugin {name!r}{suggest(name, self.plugins)}; `core list` shows what is installed"
            )
        plugin = self.plugins[name]
        if plugin.error:
            raise UserError(f"plugin {name!r} is broken: {plugin.error}")
        return plugin

    def task(self, qualname: str) -> tuple[Plugin, Task]:
        if ":" not in qualname:
            raise UserError(f"task {qualname!r} must be written plugin:task, e.g. {qualname}:demo")
        pname, tname = qualname.split(":", 1)
        plugin = self.plugin(pname)
        if tname not in plugin.tasks:
            raise UserError(f"plugin {pname!r} has no task {tname!r}{suggest(tname, plugin.tasks)}")
        return plugin, plugin.tasks[tname]

    def component(
        self, qualname: str, kind: str | None = None, default_plugin: str | None = None
    ) -> tuple[Plugin, Component]:
        if ":" not in qualname:
            if default_plugin is None:
                raise UserError(f"component {qualname!r} must be written plugin:name")
            qualname = f"{default_plugin}:{qualname}"
        pname, cname = qualname.split(":", 1)
        plugin = self.plugin(pname)
        if cname not in plugin.components:
            names = [n for n, c in plugin.components.items() if kind is None or c.kind == kind]
            raise UserError(f"plugin {pname!r} has no {kind or 'component'} {cname!r}{suggest(cname, names)}")
        comp = plugin.components[cname]
        if kind is not None and comp.kind != kind:
            raise UserError(f"{qualname} is a {comp.kind}, but a {kind} is needed here")
        return plugin, comp

    def folder_loaders(self, kind: str = "model", contract: str | None = None) -> list[str]:
        """Qualified names of components that load a saved folder (``loads_folder``), optionally by contract."""
        return [
            f"{p.name}:{c.name}"
            for p in self.healthy()
            for c in p.components.values()
            if c.loads_folder and c.kind == kind and (contract is None or contract in c.produces)
        ]

    def hook(self) -> Any:
        return self.pm.hook


def _disabled() -> tuple[bool, set[str]]:
    value = os.environ.get(DISABLE_ENV, "").strip()
    if value.lower() in ("1", "all", "*", "true", "yes"):
        return True, set()
    return False, {v.strip() for v in value.split(",") if v.strip()}


def discover(entry_points: bool = True) -> Registry:
    """Build the registry: the built-in plugin plus every installed, enabled plugin."""
    reg = Registry()
    reg.add_module(BUILTIN_NAME, "paperloom.builtin.plugin", CORE_DISTRIBUTION, __version__)
    all_off, skip = _disabled()
    if not entry_points or all_off:
        return reg
    seen: dict[str, str] = {}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        facts = dist_facts(dist)
        dname, version = facts.name, facts.version
        if ep.name in skip:
            continue
        if ep.name == BUILTIN_NAME:
            reg.broken(
                f"{ep.name} ({dname})", f"the name {ep.name!r} is reserved for the core", ep.value, dname, version
            )
            continue
        if ep.name in seen:
            reason = f"two distributions claim the plugin name {ep.name!r}: {seen[ep.name]} and {dname}; uninstall one"
            reg.broken(ep.name, reason, ep.value, f"{seen[ep.name]}, {dname}", version)
            continue
        seen[ep.name] = dname
        try:
            problem = check_compatible(_core_range(facts))
            if _declares_old_name(facts):
                problem = (f"{dname} depends on 'paperloom', an unrelated PyPI package; "
                           f"depend on {CORE_DISTRIBUTION} instead")
        except Exception as exc:
            problem = f"unreadable paperloom requirement: {exc}"
        if problem:
            reg.broken(ep.name, problem, ep.value, dname, version)
            continue
        reg.add_module(ep.name, ep.value, dname, version)
    return reg


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, discovered on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = discover()
    return _REGISTRY


def set_registry(reg: Registry | None) -> None:
    """Replace (or reset, with None) the process-wide registry; tests use this."""
    global _REGISTRY
    _REGISTRY = reg
