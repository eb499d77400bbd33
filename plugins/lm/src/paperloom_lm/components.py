"""Builders of the `lm` components: ``builder(ctx, **kwargs)``."""

from __future__ import annotations

from typing import Any

from .hf import load_causal_lm as _load_folder


def build_gpt2(ctx: Any, vocab_size: int = 2048, n_layer: int = 2, n_embd: int = 64, n_head: int = 2,
               n_positions: int = 256, **kwargs: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                                      n_positions=n_positions, bos_token_id=0, eos_token_id=0, **kwargs))


def build_llama(ctx: Any, vocab_size: int = 2048, num_hidden_layers: int = 2, hidden_size: int = 64,
                num_attention_heads: int = 2, intermediate_size: int | None = None,
                max_position_embeddings: int = 512, **kwargs: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab_size, num_hidden_layers=num_hidden_layers, hidden_size=hidden_size,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings, bos_token_id=0, eos_token_id=0, **kwargs))


def load_causal_lm(ctx: Any, path: str = "", vocab_size: int | None = None, **kwargs: Any) -> Any:
    """Any HF causal LM saved in local folder `path` (a plugin's own model_type included)."""
    return _load_folder(path, vocab_size, **kwargs)


def build_perplexity(ctx: Any, batch_size: int = 16) -> Any:
    from .causal_lm import evaluate_lm

    def evaluate(model: Any, data: Any, ctx: Any) -> dict[str, float]:
        return evaluate_lm(model, data, batch_size, device=ctx.device)

    return evaluate
