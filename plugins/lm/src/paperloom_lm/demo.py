"""`lm:demo`: pre-train a tiny GPT-2 on the embedded corpus with the shared recipe; val loss falls."""

from __future__ import annotations

from typing import Any

from .tasks import pretrain


def demo(cfg: Any, ctx: Any) -> dict[str, float]:
    return pretrain(cfg, ctx)
