"""Builders of the Megalodon components (`megalodon:tiny`, `megalodon:small`, `megalodon:7b`): ``builder(ctx, **kw)``.

Each returns a randomly initialised `MegalodonForCausalLM` of its size (`model.PRESETS`), with
`vocab_size` and any `MegalodonConfig` field overridden. Importing this module registers the
"megalodon" model type, so a saved checkpoint folder loads by path (`hf_model_types`).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from .model import MegalodonConfig, MegalodonForCausalLM, preset_config

FIELDS = set(inspect.signature(MegalodonConfig.__init__).parameters) - {"self", "kwargs"}


def _build(preset: str, vocab_size: int, overrides: dict[str, Any]) -> MegalodonForCausalLM:
    # Keys that are no MegalodonConfig field (the GPT-2 sizes of lm:pretrain's defaults, say) are dropped with a
    # warning, so generic tasks compose with `--set model=megalodon:tiny`; a misspelt size shows up there too.
    unknown = sorted(k for k in overrides if k not in FIELDS)
    if unknown:
        warnings.warn(f"megalodon builder: ignoring options that are not MegalodonConfig fields: {unknown}; "
                      f"known: {sorted(FIELDS)}", stacklevel=3)
    known = {k: v for k, v in overrides.items() if k in FIELDS}
    return MegalodonForCausalLM(preset_config(preset, vocab_size=vocab_size, **known))


def build_tiny(ctx: Any, vocab_size: int = 2048, **overrides: Any) -> MegalodonForCausalLM:
    return _build("tiny", vocab_size, overrides)


def build_small(ctx: Any, vocab_size: int = 2048, **overrides: Any) -> MegalodonForCausalLM:
    return _build("small", vocab_size, overrides)


def build_7b(ctx: Any, vocab_size: int = 2048, **overrides: Any) -> MegalodonForCausalLM:
    return _build("7b", vocab_size, overrides)
