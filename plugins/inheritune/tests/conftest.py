"""Tiny reference checkpoints built from configs, a generated corpus and a reference pre-trained on it by
`inheritune:pretrain` (no downloads)."""

from __future__ import annotations

import json
import random

import pytest
import torch

# Overrides that make text tasks take seconds: a 300-token BPE, 16-token blocks, 4 steps of 4 blocks.
TINY = ["data.vocab_size=300", "data.block_size=16", "data.val_fraction=0.1"]
STEPS = {"max_steps": 4, "val_every": 2, "checkpoint_every": 2, "batch_size": 4, "log_every": 1}


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


@pytest.fixture(scope="session")
def tiny():
    """(data overrides, trainer section) of a seconds-long text run."""
    return TINY, STEPS


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A generated text file: sentences about cats and numbers, enough for a few hundred tokens."""
    rng = random.Random(0)
    words = "the cat dog sat ran on under mat log big small red blue one two three four five".split()
    lines = [" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(300)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n\n".join(lines))
    return str(path)


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory, corpus):
    """(metrics, models built) of a 4-block GPT-2 pre-trained for 4 steps by inheritune:pretrain; exported to
    <run>/model with its tokenizer."""
    from paperloom.runner import execute

    watch: list = []
    out = tmp_path_factory.mktemp("runs") / "ref"
    _, metrics = execute("inheritune:pretrain", out=out, device="cpu", plot=False, watch=watch, overrides=[
        f"data.source={corpus}", *TINY, "model_args={n_layer: 4, n_embd: 32, n_head: 2, n_positions: 32}",
        f"trainer={json.dumps(STEPS)}"])
    return out / "model", metrics, watch


@pytest.fixture(scope="session")
def reference(pretrained):
    """The pre-trained reference's checkpoint folder (tokenizer included)."""
    return pretrained[0]
