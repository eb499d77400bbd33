"""Tiny decoders built from configs (float64 for exact parity), one thread for every test."""

from __future__ import annotations

import torch

torch.set_num_threads(1)


def perturb(model, seed):
    """Move every tensor off its init value (norms start at exactly 1/0), as a trained model would be."""
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def llama(seed=0, layers=2, width=32, heads=4, kv=2, vocab=40, cls="llama"):
    import transformers as tf

    torch.manual_seed(seed)
    Config, Model = {"llama": (tf.LlamaConfig, tf.LlamaForCausalLM), "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
                     "mistral": (tf.MistralConfig, tf.MistralForCausalLM),
                     "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM)}[cls]
    model = Model(Config(vocab_size=vocab, num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                         num_key_value_heads=kv, intermediate_size=2 * width, max_position_embeddings=512,
                         bos_token_id=0, eos_token_id=0, pad_token_id=0))
    return perturb(model.double().eval(), seed)


def gpt2(seed=0, layers=2, width=32, heads=4, vocab=40):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_layer=layers, n_embd=width, n_head=heads, n_positions=128,
                                       bos_token_id=0, eos_token_id=0))
    return perturb(model.double().eval(), seed)
