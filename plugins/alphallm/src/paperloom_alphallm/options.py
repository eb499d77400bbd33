"""Options (search actions) and their generation: a reasoning step is the tokens up to and including a newline
(the termination function beta of Sec. 4.3.1 for GSM8K-style data), or up to EOS.

``sample_options`` encodes the shared prefix (the state) once, copies its KV cache to every row of the batch
and decodes all n options in parallel; ``sample_options_uncached`` is the baseline that re-encodes the prefix
for every option (what a naive search does). Greedy decoding is token-identical either way (tests).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch

from .data import ANSWER_MARK


@dataclass
class Option:
    """One generated step: its tokens, text, policy log-probability and whether it ends the solution."""

    ids: list[int]
    text: str
    logprob: float
    terminal: bool
    eos: bool = False
    extra: dict = field(default_factory=dict)


class Stepper:
    """Knows where options end for one tokenizer: token ids whose text holds a newline, and EOS."""

    def __init__(self, tokenizer: Any, max_step_tokens: int = 48, max_total_tokens: int = 256) -> None:
        self.tokenizer, self.eos = tokenizer, tokenizer.eos_token_id
        self.max_step_tokens, self.max_total_tokens = max_step_tokens, max_total_tokens
        self.newline = newline_mask(tokenizer)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def option(self, ids: list[int], logprob: float, eos: bool) -> Option:
        text = self.decode(ids)
        # the answer line ends the solution; so do EOS and an empty step (the policy has nothing more to say)
        terminal = eos or ANSWER_MARK in text or not text.strip()
        return Option(ids, text, logprob, terminal, eos)


@functools.lru_cache(maxsize=8)
def _newline_ids(tokenizer: Any) -> tuple[int, ...]:
    vocab = len(tokenizer)
    return tuple(i for i in range(vocab) if "\n" in tokenizer.decode([i]))


def newline_mask(tokenizer: Any) -> torch.Tensor:
    mask = torch.zeros(len(tokenizer), dtype=torch.bool)
    mask[list(_newline_ids(tokenizer))] = True
    return mask


def _pick(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """Next token per row: argmax at temperature 0, else a sample from softmax(logits / T)."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def decode_batch(model: Any, prefix: list[int], n: int, stepper: Stepper, temperature: float = 1.0,
                 generator: torch.Generator | None = None, until: str = "step",
                 max_tokens: int | None = None) -> list[Option]:
    """n continuations of `prefix`, decoded together from one encoding of it (KV cache shared by all rows).

    until="step": stop each row at its first newline (one option); until="end": continue through steps until
    the answer line is finished or EOS (a full rollout; the whole text is returned as one Option)."""
    max_tokens = max_tokens or (stepper.max_step_tokens if until == "step" else stepper.max_total_tokens)
    max_tokens = min(max_tokens, context_limit(model) - len(prefix))  # never run past the position table
    if max_tokens <= 0:
        return [stepper.option([], 0.0, True) for _ in range(n)]
    device = next(model.parameters()).device
    past, logits = forward_cached(model, torch.tensor([prefix], device=device), None)
    if n > 1:  # every row continues the same state: copy its cache instead of re-encoding the prefix
        past = _repeat_cache(past, n)
        logits = logits.expand(n, -1)
    rows: list[list[int]] = [[] for _ in range(n)]
    logps = [0.0] * n
    done = [False] * n
    eos = [False] * n
    line_start = [0] * n  # where each row's current line began
    is_newline = stepper.newline.tolist()
    for _ in range(max_tokens):
        tok = _pick(logits, temperature, generator)
        lp = torch.log_softmax(logits, -1).gather(-1, tok[:, None]).squeeze(-1).tolist()
        toks = tok.tolist()
        for i in range(n):
            if done[i]:
                continue
            t = toks[i]
            if t == stepper.eos:
                done[i] = eos[i] = True
                continue
            rows[i].append(t)
            logps[i] += lp[i]
            if is_newline[t]:
                if until == "step" or ANSWER_MARK in stepper.decode(rows[i][line_start[i]:]):
                    done[i] = True  # the option (or, for a rollout, the answer line) is complete
                line_start[i] = len(rows[i])
        if all(done):
            break
        past, logits = forward_cached(model, tok[:, None], past)
    return [stepper.option(rows[i], logps[i], eos[i]) for i in range(n)]


def context_limit(model: Any) -> int:
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        if getattr(cfg, name, None):
            return int(getattr(cfg, name))
    return 1 << 30  # no position table (e.g. relative positions): no limit


def forward_cached(model: Any, ids: torch.Tensor, past: Any) -> tuple[Any, torch.Tensor]:
    """One forward step with a KV cache: (the grown cache, next-token logits (B, V)). transformers >= 5 names
    the cache argument `cache`, earlier versions (and some plugin models) `past_key_values`."""
    name = _cache_arg(type(model))
    out = model(input_ids=ids, use_cache=True, **({name: past} if past is not None else {}))
    cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
    return cache, out.logits[:, -1].float()


@functools.lru_cache(maxsize=32)
def _cache_arg(cls: type) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def _repeat_cache(past: Any, n: int) -> Any:
    if hasattr(past, "batch_repeat_interleave"):  # transformers Cache objects
        past.batch_repeat_interleave(n)
        return past
    if hasattr(past, "reorder_cache"):  # beam-search style caches (e.g. Megalodon's): select row 0 n times
        past.reorder_cache(torch.zeros(n, dtype=torch.long))
        return past
    return tuple(tuple(t.repeat_interleave(n, dim=0) for t in layer) for layer in past)  # legacy tuples


def sample_options(model: Any, prefix: list[int], n: int, stepper: Stepper, temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> list[Option]:
    """n options (one step each) from the state `prefix`, batched with the prefix cache reused."""
    return decode_batch(model, prefix, n, stepper, temperature, generator, until="step")


def sample_options_uncached(model: Any, prefix: list[int], n: int, stepper: Stepper, temperature: float = 1.0,
                            generator: torch.Generator | None = None) -> list[Option]:
    """The baseline: each option on its own, re-encoding the whole prefix every time."""
    return [decode_batch(model, prefix, 1, stepper, temperature, generator, until="step")[0] for _ in range(n)]


def rollout(model: Any, prefix: list[int], n: int, stepper: Stepper, temperature: float = 1.0,
            generator: torch.Generator | None = None) -> list[Option]:
    """n complete continuations of `prefix` to the end of the solution (fast rollouts, sampling baselines)."""
    return decode_batch(model, prefix, n, stepper, temperature, generator, until="end")


def n_steps(text: str) -> int:
    """Options a completion holds (its lines); the unit of the rollout budget."""
    return max(1, sum(1 for line in text.split("\n") if line.strip()))
