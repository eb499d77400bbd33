"""Builders of the alphallm components: ``builder(ctx, **kwargs)``."""

from __future__ import annotations

from typing import Any

from paperloom import UserError

from . import data, synthetic

TEST_OFFSET = 1_000_003  # the test split draws from another seed, and skips every training question


def build_arithmetic(ctx: Any, n: int = 1000, seed: int = 0, split: str = "train", min_ops: int = 2,
                     max_ops: int = 3, max_operand: int = 5, max_start: int = 20) -> list[dict]:
    """`n` generated problems; split='test' draws other problems, none equal to a train-split question of the
    same seed (the first 20000 are excluded). ``seed`` fixes the data, not the run's --seed."""
    if split not in ("train", "test"):
        raise UserError(f"alphallm:arithmetic: split = {split!r}; expected 'train' or 'test'")
    if min_ops > max_ops:
        raise UserError(f"alphallm:arithmetic: min_ops = {min_ops} > max_ops = {max_ops}; lower min_ops")
    kw = {"min_ops": min_ops, "max_ops": max_ops, "max_operand": max_operand, "max_start": max_start}
    if split == "train":
        return synthetic.arithmetic_problems(n, seed, **kw)
    exclude = {p["question"] for p in synthetic.arithmetic_problems(20000, seed, **kw)}
    return synthetic.arithmetic_problems(n, seed + TEST_OFFSET, exclude=exclude, **kw)


def build_gsm8k(ctx: Any, path: str = "", max_rows: int = 0) -> list[dict]:
    if not path:
        raise UserError("alphallm:gsm8k needs path=<a GSM8K-style .jsonl file> (e.g. --set data_args.path=test.jsonl)")
    return data.read_gsm8k(path, max_rows)


def build_critic(ctx: Any, path: str = "", backbone: str = "lm:gpt2", heads: tuple | list = ("value", "prm", "orm"),
                 **backbone_args: Any) -> Any:
    """A saved critic folder (path=...), or new heads on a backbone built by name / loaded from a folder."""
    from .model import Critic, load_critic

    if path:
        return load_critic(path)
    return Critic(ctx.build(backbone, **backbone_args), tuple(heads))


def build_accuracy(ctx: Any, tokenizer: Any = None) -> Any:
    """``evaluate(policy, problems, ctx) -> {"greedy_accuracy", "problems"}``; `tokenizer`: an HF tokenizer
    or its folder (default: the character tokenizer)."""
    from .data import is_correct
    from .decoding import greedy
    from .options import Stepper
    from .tasks import load_tokenizer_for

    tok = load_tokenizer_for("", tokenizer) if not hasattr(tokenizer, "decode") else tokenizer

    def evaluate(policy: Any, problems: Any, ctx: Any) -> dict[str, float]:
        rows = list(problems)
        if not rows:
            raise UserError("alphallm:accuracy: no problems to evaluate")
        stepper = Stepper(tok)
        policy.eval()
        right = sum(is_correct(greedy(policy, stepper, p["question"])["text"], p["answer"]) for p in rows)
        return {"greedy_accuracy": right / len(rows), "problems": float(len(rows))}

    return evaluate
