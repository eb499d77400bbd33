"""Seed statistics for demo claims: the mean with its standard error, and claims as bounds a few SEs away."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n); 0 for a single value)."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean and SE of a - b over matched samples (same seed / data order for both arms)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_difference needs two equally long, non-empty lists")
    return mean_se([x - y for x, y in zip(a, b)])
