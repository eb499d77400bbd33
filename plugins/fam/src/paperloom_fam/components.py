"""Builders of the plugin's components (``builder(ctx, **kwargs)``), so other tasks and plugins compose with
TransformerFAM by name: ``core run lm:evaluate --set model=fam:wrap
--set model_args='{base: /ckpt/llama, block_size: 1024, fam_len: 64}'``. Importing this module registers the
"fam" model type, so a saved FAM folder loads by path (`hf_model_types`)."""

from __future__ import annotations

from typing import Any

from paperloom import UserError
from paperloom.context import looks_like_path

from .config import FAMSettings
from .model import FAMForCausalLM

SETTINGS = tuple(FAMSettings.__dataclass_fields__)


def build_wrap(ctx: Any, base: str = "lm:llama", base_args: dict | None = None, vocab_size: int | None = None,
               **settings: Any) -> FAMForCausalLM:
    """`base` (a causal-lm component or a checkpoint folder) run as BSWA/FAM with `settings` (FAMSettings fields;
    unset ones default as in FAMSettings). A saved FAM folder loads with its own settings unless overridden."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise UserError(f"fam:wrap: unknown argument {unknown[0]!r}; known: base, base_args, vocab_size, "
                        + ", ".join(SETTINGS))
    args = dict(base_args or {})
    if looks_like_path(base):
        model = ctx.build(base, **({"vocab_size": vocab_size} if vocab_size else {}))
    else:
        model = ctx.build(base, **({"vocab_size": vocab_size} if vocab_size else {}), **args)
    if isinstance(model, FAMForCausalLM):  # a saved FAM model: its settings unless overridden, its prompt kept
        if not settings:
            return model
        prompt, settings = model.fam_prompt, {**{k: getattr(model.config, k) for k in SETTINGS}, **settings}
        wrapped = _wrap(model.base, settings)
        if prompt is not None and wrapped.fam_prompt is not None and wrapped.fam_prompt.shape == prompt.shape:
            wrapped.fam_prompt.data.copy_(prompt.data)
        return wrapped
    return _wrap(model, settings)


def _wrap(model: Any, settings: dict) -> FAMForCausalLM:
    defaults = {k: f.default for k, f in FAMSettings.__dataclass_fields__.items()}
    try:
        return FAMForCausalLM.wrap(model, **{**defaults, **settings})
    except ValueError as exc:
        raise UserError(f"fam:wrap: {exc}") from None
