"""registry.yaml: the index of known plugins (`core available`, `core install`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import UserError, suggest

FIELDS = ("name", "distribution", "version", "summary", "tasks", "core")
ENV = "PAPERLOOM_REGISTRY"


PACKAGED = Path(__file__).parent / "registry.yaml"  # a copy of the repository's registry.yaml (a test keeps them equal)


def find_registry(explicit: str | None = None) -> Path:
    """--registry / $PAPERLOOM_REGISTRY (a path or an http(s)/file URL), else registry.yaml in this folder or
    above (a checkout), else the index shipped inside the core."""
    given = explicit or os.environ.get(ENV)
    if given:
        if given.startswith(("http://", "https://", "file://")):
            return _download(given)
        path = Path(given)
        if not path.is_file():
            raise UserError(f"registry file {path} does not exist; pass a registry.yaml path or URL")
        return path
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "registry.yaml").is_file():
            return folder / "registry.yaml"
    return PACKAGED


def _download(url: str) -> Path:
    import tempfile
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 (the user named this URL)
            text = r.read()
    except Exception as exc:
        raise UserError(f"registry {url} could not be read ({exc}); check the URL or pass a local file") from None
    tmp = Path(tempfile.mkdtemp(prefix="paperloom-registry-")) / "registry.yaml"
    tmp.write_bytes(text)
    return tmp


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
        target = (registry_path.parent / entry["path"]).resolve()
        if not target.is_dir():
            raise UserError(f"{entry['name']} is listed in {registry_path} by a path inside a paperloom checkout "
                            f"({entry['path']}); run `core install` from that checkout or pass --registry")
        return str(target)
    url = f"git+{entry['git']}" if not entry["git"].startswith("git+") else entry["git"]
    return url + (f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else "")


def install(name: str, explicit: str | None = None, dry_run: bool = False, pip_args: list[str] | None = None) -> int:
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
    cmd = [sys.executable, "-m", "pip", "install", *(pip_args or []), *[pip_target(by_name[n], path) for n in order]]
    print(" ".join(cmd))
    if dry_run:
        return 0
    return subprocess.call(cmd)
