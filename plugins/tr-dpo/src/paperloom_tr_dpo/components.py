"""Builders of the tr-dpo components: ``builder(ctx, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paperloom import UserError

from . import data, synthetic


def build_hh(ctx: Any, path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    return data.read_hh(path, split, max_rows)


def build_tldr(ctx: Any, path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    return data.read_tldr(path, split, max_rows)


def build_hf_disk(ctx: Any, path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    return data.read_hf_disk(path, split, max_rows)


def build_unpaired(ctx: Any, path: str = "", split: str = "train", max_rows: int = 0) -> Any:
    return data.read_unpaired(path, split, max_rows)


def build_synthetic(ctx: Any, n: int = 1024, seed: int = 0, split: str = "train") -> Any:
    """Pairs of base responses labelled by the hidden gold reward; the test split uses other prompts.
    ``seed`` fixes the data (not the run's --seed), so every run of a comparison sees the same pairs."""
    return data.to_dataset(synthetic.synthetic_pairs(n, seed + (10_000 if split == "test" else 0)), "synthetic")


def build_win_rate(ctx: Any, baseline: Any = None, sft: Any = None, judge: str = "gold", tokenizer: Any = None,
                   prompts: int = 64, samples: int = 4, max_new_tokens: int = 16, temperature: float = 1.0,
                   batch_size: int = 64) -> Callable[..., dict[str, float]]:
    """``evaluate(policy, data, ctx) -> {win_rate, reward, baseline_reward, kl, length}``.

    ``data``: rows with a ``prompt`` column (or a list of prompt strings), the first `prompts` are evaluated;
    ``baseline`` / ``sft``: models (KL is measured against ``sft``, the baseline by default); ``tokenizer``: the
    policies' shared tokenizer; ``judge``: 'gold' or a local sequence-classification reward-model folder.
    """
    from .win_rate import compare, make_judge

    if baseline is None or tokenizer is None:
        raise UserError("tr-dpo:win-rate needs baseline= (a model) and tokenizer=")
    score = make_judge(judge, ctx.device)

    def evaluate(policy: Any, data: Any, ctx: Any) -> dict[str, float]:
        ps = list(data["prompt"] if hasattr(data, "column_names") else data)[:prompts]
        if not ps:
            raise UserError("tr-dpo:win-rate: no prompts to evaluate")
        return compare(policy, baseline, sft if sft is not None else baseline, tokenizer, ps, score, samples,
                       max_new_tokens, temperature, ctx.seed, batch_size)

    return evaluate
