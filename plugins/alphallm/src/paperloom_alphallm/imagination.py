"""Imagination (Sec. 4.2): synthesizing prompts x^1 = g(x^0_1, ..., x^0_m, pi^0) with the policy itself as g.

The policy sees `shots` seed questions as ``Q: ...`` lines and writes the next one; a question is kept when it
is well formed (ends with '?'), differs from every seed and every kept question by more than `min_distance`
characters, and, with a critic, when the value of its prompt lies in [min_value, max_value] (neither hopeless
nor trivial for the current policy). A verifiable domain can use a problem generator instead (`generator`).
"""

from __future__ import annotations

import random
from typing import Any

from .critics import Critics
from .data import prompt
from .eta_mcts import edit_distance
from .options import Stepper, decode_batch


def few_shot(seeds: list[str]) -> str:
    return "".join(f"Q: {q}\n" for q in seeds) + "Q:"


def synthesize(policy: Any, stepper: Stepper, seeds: list[dict], n: int, shots: int, rng: random.Random,
               temperature: float = 1.0, critics: Critics | None = None, min_value: float = 0.0,
               max_value: float = 1.0, min_distance: int = 3, max_tries: int = 0) -> tuple[list[dict], dict]:
    """Up to `n` new questions (no answers) and the filter's counts."""
    questions = [s["question"] for s in seeds]
    kept: list[dict] = []
    counts = {"generated": 0, "malformed": 0, "duplicate": 0, "value_filtered": 0}
    for _ in range(max_tries or 20 * n):
        if len(kept) >= n:
            break
        shown = rng.sample(questions, min(shots, len(questions)))
        ids = stepper.encode(few_shot(shown))
        opt = decode_batch(policy, ids, 1, stepper, temperature, until="step")[0]
        counts["generated"] += 1
        q = opt.text.strip()
        if not q.endswith("?") or len(q) < 8:
            counts["malformed"] += 1
            continue
        if any(edit_distance(q, other) <= min_distance for other in questions + [k["question"] for k in kept]):
            counts["duplicate"] += 1
            continue
        if critics is not None and critics.critic is not None:
            v = critics.evaluate([stepper.encode(prompt(q))])["value"][0]
            if not (min_value <= v <= max_value):
                counts["value_filtered"] += 1
                continue
        kept.append({"question": q, "answer": ""})
    return kept, counts
