"""registry.yaml: the index of known plugins (`core available`, `core install`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import UserError, suggest

FIELDS = ("name", "distribution", "version", "summary", "tasks", "core")
ENV = "PAPERLOOM_REGISTRY"


def find_registry(explicit: str | None = None) -> Path:
    if explicit or os.environ.get(ENV):
        path = Path(explicit or os.environ[ENV])
        if not path.is_file():
            raise UserError(f"registry file {path} does not exist")
        return path
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "registry.yaml").is_file():
            return folder / "registry.yaml"
    raise UserError(f"no registry.yaml in this folder or above; pass --registry FILE or set {ENV}")


def load_registry(explicit: str | None = None) -> tuple[Path, list[dict]]:
    from .config import load_yaml

    path = find_registry(explicit)
    data = load_yaml(path)
    entries = data.get("plugins")
    if not isinstance(entries, list):
        raise UserError(f"{path}: key 'plugins' must be a list of plugin entries")
    for i, e in enumerate(entries):
        missing = [f for f in FIELDS if f not in e]
        if missing:
            raise UserError(f"{path}: plugins[{i}] lacks {', '.join(missing)}")
        if not (e.get("path") or e.get("git")):
            raise UserError(f"{path}: plugins[{i}] ({e['name']}) needs 'path' or 'git'")
    return path, entries


def pip_target(entry: dict, registry_path: Path) -> str:
    if entry.get("path"):
        return str((registry_path.parent / entry["path"]).resolve())
    url = f"git+{entry['git']}" if not entry["git"].startswith("git+") else entry["git"]
    return url + (f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else "")


def install(name: str, explicit: str | None = None, dry_run: bool = False) -> int:
    path, entries = load_registry(explicit)
    by_name = {e["name"]: e for e in entries}
    if name not in by_name:
        raise UserError(f"{name!r} is not in {path}{suggest(name, by_name)}")
    order: list[str] = []

    def add(n: str) -> None:  # the registry plugins an entry builds on (`requires`) come first
        if n not in by_name:
            raise UserError(f"{path}: {name} requires {n!r}, which the registry does not list")
        for dep in by_name[n].get("requires", []):
            add(dep)
        if n not in order:
            order.append(n)

    add(name)
    cmd = [sys.executable, "-m", "pip", "install", *[pip_target(by_name[n], path) for n in order]]
    print(" ".join(cmd))
    if dry_run:
        return 0
    return subprocess.call(cmd)
