"""Tiny shared fixtures: the character tokenizer, tiny random GPT-2 / Llama policies, a scripted fake LM."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models: one thread is fastest, and robust on a shared machine


def run_ctx(out: str | Path = ".", workers: int = 1, seed: int = 0) -> object:
    from paperloom.context import Run

    return Run(out=Path(out), plugin="alphallm", task="test", workers=workers, seed=seed)


@pytest.fixture(scope="session")
def tok():
    from paperloom_alphallm.synthetic import problem_tokenizer

    return problem_tokenizer()


@pytest.fixture(scope="session")
def stepper(tok):
    from paperloom_alphallm.options import Stepper

    return Stepper(tok, max_step_tokens=12, max_total_tokens=40)


def tiny_policy(tok, kind: str = "gpt2", seed: int = 0):
    torch.manual_seed(seed)
    if kind == "gpt2":
        m = run_ctx().build("lm:gpt2", vocab_size=len(tok), n_layer=1, n_embd=32, n_head=2, n_positions=256)
    else:
        m = run_ctx().build("lm:llama", vocab_size=len(tok), num_hidden_layers=1, hidden_size=32,
                            num_attention_heads=2, max_position_embeddings=256)
    return m.eval()


@pytest.fixture(scope="session")
def policy(tok):
    return tiny_policy(tok)


@pytest.fixture()
def search_cfg():
    from paperloom_alphallm.config import SearchConfig

    return SearchConfig(c_min0=3, c_min=2, c_max0=4, c_max=3, rollouts=24, fast_rollouts=1, max_depth=4)


class ScriptedLM(torch.nn.Module):
    """A fake causal LM that always writes `script` (position by position after the prompt), for exact
    tests of where options and rollouts stop. Its cache is a tensor whose width is the length so far."""

    def __init__(self, tok, script: str, prompt_len: int) -> None:
        super().__init__()
        self.ids = tok(script, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        self.vocab, self.prompt_len = len(tok), prompt_len
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, use_cache=True, past_key_values=None, **kw):
        from transformers.modeling_outputs import CausalLMOutputWithPast

        seen = 0 if past_key_values is None else past_key_values[0][0].shape[1]
        b, t = input_ids.shape
        logits = torch.full((b, t, self.vocab), -10.0)
        for j in range(t):
            k = min(seen + j + 1 - self.prompt_len, len(self.ids) - 1)
            logits[:, j, self.ids[max(k, 0)]] = 10.0
        cache = ((torch.zeros(b, seen + t),),)
        return CausalLMOutputWithPast(logits=logits, past_key_values=cache)
