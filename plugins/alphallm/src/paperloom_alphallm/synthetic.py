"""Generated data for the demo and tests: multi-step arithmetic word problems with GSM8K-style solutions
(one step per line, a final ``#### n`` line), and a character-level tokenizer so a tiny policy can learn them.

This is the plugin's pluggable *problem generator* for a verifiable domain (imagination, Sec. 4.2): every
problem carries its gold answer, so the exact checker can score any trajectory.
"""

from __future__ import annotations

import random
import string
from typing import Any

NAMES = ("Ann", "Bob", "Cal", "Dee", "Eli", "Fay", "Gus", "Ivy")
ITEMS = ("apples", "cards", "coins", "eggs", "pens", "books")
GAIN = ("buys", "finds", "gets", "wins")
LOSS = ("eats", "loses", "sells", "gives")
EOS, PAD, UNK = "<|endoftext|>", "<pad>", "<unk>"
CHARS = sorted(set(string.printable) - set("\r\x0b\x0c\t"))
WORDS = (*NAMES, *ITEMS, *GAIN, *LOSS, "has", "Each", "day", "How", "many", "after", "days", "####")


def arithmetic_problem(rng: random.Random, min_ops: int = 2, max_ops: int = 3, max_operand: int = 5,
                       max_start: int = 20) -> dict[str, str]:
    """One word problem: a start count changed by the same amount every day for `min_ops`..`max_ops` days
    (counts stay >= 0). Every step is 'previous count +/- amount = new count': the errors a small policy makes
    are arithmetic slips in single steps, the kind step-level search can catch.

    >>> arithmetic_problem(random.Random(0))["answer"].splitlines()[-1].startswith("#### ")
    True
    """
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    days, k = rng.randint(min_ops, max_ops), rng.randint(1, max_operand)
    value = rng.randint(2, max_start)
    lose = value - days * k >= 0 and rng.random() < 0.5
    verb = rng.choice(LOSS if lose else GAIN)
    steps = []
    for _ in range(days):
        new = value - k if lose else value + k
        steps.append(f"{value}{'-' if lose else '+'}{k}={new}")
        value = new
    question = f"{name} has {steps[0].split('+')[0].split('-')[0]} {item}. Each day {name} {verb} {k}. " \
               f"How many {item} after {days} days?"
    return {"question": question, "answer": "\n".join(steps) + f"\n#### {value}"}


def arithmetic_problems(n: int, seed: int = 0, exclude: set[str] | None = None, **kwargs: Any) -> list[dict]:
    """`n` distinct problems from `seed`; questions in `exclude` (e.g. a training set) are skipped."""
    rng, seen, out = random.Random(seed), set(exclude or ()), []
    for _ in range(100 * n + 1000):
        if len(out) == n:
            break
        p = arithmetic_problem(rng, **kwargs)
        if p["question"] not in seen:
            seen.add(p["question"])
            out.append(p)
    return out


def problem_tokenizer() -> Any:
    """The demo's HF tokenizer: each number 0-999, each word the generator uses, and every other printable
    character one token. Whole-number tokens make a step like '27+7=34' five tokens, which is what lets a
    2-layer model learn the problems in a few CPU minutes; it saves and loads like any HF tokenizer."""
    import re

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(WORDS), key=lambda w: (-len(w), w))  # longest first (regex alternation); fixed ids
    vocab = {t: i for i, t in enumerate([EOS, PAD, UNK, *CHARS, *(str(n) for n in range(10, 1000)), *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    pattern = "|".join(map(re.escape, words)) + r"|[1-9]\d{0,2}|[\s\S]"  # known word | number | one character
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=UNK, pad_token=PAD)
