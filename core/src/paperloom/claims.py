"""Claims: a task's declared `Check`s evaluated against a run's metrics (``core verify``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .interfaces import Check
from .plugins import Registry

OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def check(claim: Check, metrics: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, message) for one claim."""
    left = metrics.get(claim.metric)
    right = metrics.get(claim.other) if claim.other else claim.value
    rname = claim.other or repr(claim.value)
    if not isinstance(left, (int, float)) or not isinstance(right, (int, float)):
        missing = claim.metric if not isinstance(left, (int, float)) else claim.other
        return False, f"metric {missing!r} missing from metrics.json"
    return OPS[claim.op](left, right), f"{claim.metric} = {left:.4g} {claim.op} {rname} = {right:.4g}"


def verify(reg: Registry, qualname: str, metrics: Mapping[str, Any]) -> list[tuple[Check, bool, str]]:
    """Every declared check of task `qualname` against `metrics`: (check, passed, message) each."""
    _, task = reg.task(qualname)
    return [(c, *check(c, metrics)) for c in task.verify]
