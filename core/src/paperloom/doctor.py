"""`core doctor`: check what plugins declare they need, without importing their code."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import sys

from .plugins import Registry


def package_problem(requirement: str) -> str | None:
    """None when `requirement` (PEP 508) is satisfied here, else what is wrong and how to fix it."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        return None
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        return f"{req.name} is not installed: pip install '{requirement}'"
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{req.name} {version} is installed but {requirement} is needed: pip install '{requirement}'"
    return None


def total_memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def gpu_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def doctor(reg: Registry, only: str | None = None) -> int:
    core = md.version("paperloom-core") if _installed("paperloom-core") else "?"
    print(f"python {sys.version.split()[0]}; paperloom-core {core}")
    mem = total_memory_gb()
    plugins = [reg.plugins[only]] if only else list(reg.plugins.values())
    if only and only not in reg.plugins:
        reg.plugin(only)  # raises the helpful unknown-plugin error
    problems = 0
    gpu = None
    for p in plugins:
        if p.error:
            print(f"FAIL {p.name}: broken: {p.error}")
            problems += 1
            continue
        req = p.info.requires
        issues = [m for m in (package_problem(r) for r in req.packages) if m]
        notes = [f"optional: {m}" for m in (package_problem(r) for r in req.extras) if m]
        if req.gpu != "none":
            gpu = gpu_available() if gpu is None else gpu
            if not gpu:
                (issues if req.gpu == "required" else notes).append(
                    "no CUDA GPU visible" + ("" if req.gpu == "required" else ": CPU fallback paths will be used")
                )
        if mem is not None and mem < req.memory_gb:
            issues.append(f"needs ~{req.memory_gb:g} GB RAM, this machine has {mem:.1f} GB")
        print(f"{'ok  ' if not issues else 'FAIL'} {p.name}")
        for m in issues + notes:
            print(f"       - {m}")
        problems += bool(issues)
    return 1 if problems else 0


def _installed(name: str) -> bool:
    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False
