"""The baselines eta-MCTS is compared with at an equal rollout budget (Table 3 of the paper): greedy decoding,
self-consistency (majority vote over sampled solutions) and re-ranking (the sample the critics score best).
A budget counts options (solution lines) generated, the unit eta-MCTS is charged in."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from .critics import Critics
from .data import INVALID, extract_answer, prompt
from .options import Stepper, n_steps, rollout


def greedy(policy: Any, stepper: Stepper, question: str) -> dict:
    out = rollout(policy, stepper.encode(prompt(question)), 1, stepper, 0.0)[0]
    return {"text": out.text, "answer": extract_answer(out.text), "rollouts": n_steps(out.text),
            "tokens": len(out.ids)}


def sample_within(policy: Any, stepper: Stepper, question: str, budget: int, temperature: float = 1.0,
                  generator: torch.Generator | None = None, batch: int = 4) -> list[Any]:
    """Sampled solutions, in batches, keeping those that fit in `budget` options (at least one)."""
    state = stepper.encode(prompt(question))
    kept, used = [], 0
    while used < budget:
        for o in rollout(policy, state, batch, stepper, temperature, generator):
            cost = n_steps(o.text)
            if kept and used + cost > budget:
                return kept
            kept.append(o)
            used += cost
    return kept


def self_consistency(samples: list[Any]) -> dict:
    """Majority vote over the final answers (invalid ones do not vote; ties: the first answer seen)."""
    answers = [extract_answer(o.text) for o in samples]
    votes = Counter(a for a in answers if a != INVALID)
    top = max(votes, key=lambda a: (votes[a], -answers.index(a))) if votes else INVALID
    return {"answer": top, "rollouts": sum(n_steps(o.text) for o in samples), "samples": len(samples)}


def rerank(samples: list[Any], critics: Critics, state: list[int]) -> dict:
    """The sample whose final state scores best: value + PRM (+ learned ORM) at its last token."""
    seqs = [state + o.ids for o in samples]
    heads = critics.evaluate(seqs)
    scores = [critics.score(heads["value"][i], heads["prm"][i], heads["orm"][i] if critics.b["orm"] else None)
              for i in range(len(samples))]
    best = max(range(len(samples)), key=lambda i: scores[i])
    return {"answer": extract_answer(samples[best].text), "rollouts": sum(n_steps(o.text) for o in samples),
            "samples": len(samples), "heads": {**{h: heads[h] for h in critics.critic.heads}, "score": scores}
            if critics.critic is not None else {"score": scores}}
