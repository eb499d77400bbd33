"""`run.json`: what a run folder is, written by the core for every run.

plugin, task, versions (core, plugin, Python, torch and the plugin's declared packages, read from package
metadata without importing them), the resolved config's sha256, seed, device, start and end time, status
(running / finished / failed / killed) and the artifacts the task declared (`Task.artifacts`: path ->
data-contract tag) with their sha256. A config field ``option(run_contract="hf-checkpoint")`` takes a
run folder as input: the core checks its manifest (exists, finished, has that artifact, files intact)
before anything heavy loads.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import atomic_write_json, read_json

MANIFEST = "run.json"
STATUSES = ("running", "finished", "failed", "killed")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def versions(plugin: Any) -> dict[str, str]:
    """Versions of the core, the plugin, Python, torch and the plugin's declared packages (no imports)."""
    from packaging.requirements import Requirement

    out = {"paperloom-core": _version("paperloom-core") or "?", "python": platform.python_version()}
    if plugin.distribution and plugin.version:
        out[plugin.distribution] = plugin.version
    names = ["torch"] + [Requirement(r).name for r in (plugin.info.requires.packages if plugin.info else ())]
    for name in names:
        v = _version(name)
        if v:
            out[name] = v
    return out


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, in sorted order)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def start(out: Path, plugin: Any, task: Any, seed: int, device: str, resumed: bool) -> dict:
    config = (out / "config.yaml").read_bytes()
    old = read_manifest(out) if resumed and (out / MANIFEST).is_file() else {}
    manifest = {
        "plugin": plugin.name,
        "task": task.name,
        "versions": versions(plugin),
        "config_sha256": hashlib.sha256(config).hexdigest(),
        "seed": seed,
        "device": device,
        "started": old.get("started", _now()),
        "resumed": [*old.get("resumed", []), _now()] if resumed else [],
        "ended": None,
        "status": "running",
        "pid": os.getpid(),
        "inputs": {},
        "artifacts": {},
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def finish(out: Path, manifest: dict, status: str, artifacts: Mapping[str, str] = (), inputs: Mapping = ()) -> None:
    """Record the end: status, end time, and each declared artifact that exists with its sha256."""
    manifest = {**manifest, "status": status, "ended": _now(), "inputs": dict(inputs or {})}
    found = {}
    for rel, contract in dict(artifacts or {}).items():
        path = out / rel
        if path.exists():
            found[rel] = {"contract": contract, "sha256": sha256_of(path)}
    manifest["artifacts"] = found
    atomic_write_json(out / MANIFEST, manifest)


def read_manifest(out: Path) -> dict:
    """The manifest, with a dead 'running' run reported as 'killed'."""
    manifest = read_json(Path(out) / MANIFEST)
    if manifest.get("status") == "running" and not alive(int(manifest.get("pid") or 0)):
        manifest["status"] = "killed"
    return manifest


def check_input(folder: str | Path, contract: str, where: str) -> dict:
    """A previous run folder used as input: finished, holding an intact artifact of `contract`."""
    folder = Path(folder).expanduser()
    if not (folder / MANIFEST).is_file():
        raise UserError(f"{where} = {str(folder)!r}: no run folder there (no {MANIFEST}); pass a folder written by "
                        "`core run`")
    manifest = read_manifest(folder)
    if manifest.get("status") != "finished":
        raise UserError(f"{where} = {str(folder)!r}: that run is {manifest.get('status')}, not finished; finish it "
                        "(core run ... --resume) or choose another run")
    matches = [rel for rel, a in manifest.get("artifacts", {}).items() if a.get("contract") == contract]
    if not matches:
        have = sorted({a.get("contract") for a in manifest.get("artifacts", {}).values()}) or ["none"]
        raise UserError(f"{where} = {str(folder)!r}: {manifest['plugin']}:{manifest['task']} produced "
                        f"{', '.join(have)}, but {contract!r} is needed here; choose a run that produces it")
    rel = matches[0]
    if sha256_of(folder / rel) != manifest["artifacts"][rel]["sha256"]:
        raise UserError(f"{where} = {str(folder)!r}: {rel} changed since the run wrote it (sha256 differs); "
                        "re-run that task or restore the files")
    return {"run": str(folder.resolve()), "artifact": rel, "contract": contract,
            "task": f"{manifest.get('plugin')}:{manifest.get('task')}", "sha256": manifest["artifacts"][rel]["sha256"]}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
