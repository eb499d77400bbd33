"""Builders of the built-in causal-LM components (imported only when one is built)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError


def build_gpt2(
    vocab_size: int = 2048, n_layer: int = 2, n_embd: int = 64, n_head: int = 2, n_positions: int = 256, **kwargs: Any
) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_positions=n_positions,
        bos_token_id=0,
        eos_token_id=0,
        **kwargs,
    )
    return GPT2LMHeadModel(cfg)


def build_llama(
    vocab_size: int = 2048,
    num_hidden_layers: int = 2,
    hidden_size: int = 64,
    num_attention_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    **kwargs: Any,
) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab_size,
        num_hidden_layers=num_hidden_layers,
        hidden_size=hidden_size,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=0,
        eos_token_id=0,
        **kwargs,
    )
    return LlamaForCausalLM(cfg)


def load_causal_lm(path: str, vocab_size: int | None = None, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained` on a local folder; never reaches a hub."""
    from transformers import AutoModelForCausalLM

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a checkpoint folder (no config.json); pass a folder saved by save_pretrained")
    register_model_type(folder)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, **kwargs)
    if vocab_size is not None and model.get_input_embeddings().num_embeddings < vocab_size:
        raise UserError(
            f"{folder}: the model's vocabulary has {model.get_input_embeddings().num_embeddings} entries but the "
            f"tokenizer has {vocab_size}; use the tokenizer saved with the model (data.tokenizer={folder})"
        )
    return model


def register_model_type(folder: Path) -> None:
    """Import the plugin module that registers this checkpoint's `model_type` with transformers, if any."""
    import json

    from transformers import CONFIG_MAPPING

    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if not model_type or model_type in CONFIG_MAPPING:
        return
    from .plugins import registry
    from .run import load_ref

    for plugin in registry().healthy():
        for comp in plugin.components.values():
            if model_type in comp.hf_model_types:
                load_ref(comp.builder)  # importing the module registers the Auto classes
                return
    raise UserError(
        f"{folder}: model_type {model_type!r} is not known to transformers and no installed plugin "
        "declares it (Component.hf_model_types); install the plugin that saved this checkpoint"
    )


def build_text(**kwargs: Any) -> Any:
    """(tokenizer, train blocks, val blocks) from TextDataConfig fields."""
    from .lm import text_data
    from .schemas import TextDataConfig

    return text_data(TextDataConfig(**kwargs))


def build_lm_evaluator(batch_size: int = 16) -> Any:
    from .lm import evaluate_lm

    def evaluate(model: Any, data: Any, ctx: Any = None) -> dict:
        return evaluate_lm(model, data, batch_size, device=getattr(ctx, "device", "cpu"))

    return evaluate
