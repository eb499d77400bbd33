"""Tiny reference checkpoints built from configs (no downloads)."""

from __future__ import annotations

import pytest
import torch


def gpt2(layers: int = 4, width: int = 32, vocab: int = 96, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_layer=layers, n_embd=width, n_head=2, n_positions=64))
    return perturb(model, seed)


def llama(layers: int = 4, width: int = 32, vocab: int = 96, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, num_hidden_layers=layers, hidden_size=width,
                                         num_attention_heads=2, num_key_value_heads=1, intermediate_size=2 * width,
                                         max_position_embeddings=64))
    return perturb(model, seed)


def neox(layers: int = 3, width: int = 32, vocab: int = 96, seed: int = 0):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=vocab, num_hidden_layers=layers, hidden_size=width,
                                             num_attention_heads=2, intermediate_size=2 * width,
                                             max_position_embeddings=64))
    return perturb(model, seed)


def perturb(model, seed: int):
    """Move every tensor off its init value (norms start at exactly 1/0), as a trained reference would be."""
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


BUILDERS = {"gpt2": gpt2, "llama": llama, "neox": neox}


@pytest.fixture
def saved(tmp_path):
    """saved(kind, **sizes) -> (model, folder): a reference saved with save_pretrained."""

    def make(kind: str = "gpt2", name: str = "ref", **kwargs):
        model = BUILDERS[kind](**kwargs)
        folder = tmp_path / name
        model.save_pretrained(str(folder))
        return model, folder

    return make


@pytest.fixture
def builders():
    return BUILDERS
