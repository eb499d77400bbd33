"""The three critics at search time, the evaluation score, and their training data (Sec. 4.4).

score(s) = b_value * v(s) + b_PRM * PRM(s) + b_ORM * E_{tau ~ pi_fast(s)}[ORM(tau)]; the search uses it
divided by the sum of the weights in play, so Q stays in [0, 1] like the rewards it averages.

Training data from policy rollouts on problems with known answers (the paper: 50 trajectories per prompt):
value targets v(s_t) = r (the trajectory's 0/1 return, MSE; r = 1 for the right final answer reached by valid
steps, `data.verified`); PRM targets for (s_t, o_t) = the Monte-Carlo
estimate of the return through that step (the mean r of the sampled trajectories sharing the prefix; the
paper's "MC estimation with prefix sampling" proxy); ORM target = r for the whole trajectory.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch.utils.data import Dataset

from .data import prompt, verified
from .options import Stepper


def weighted_score(v: float, prm: float, orm: float, b_value: float, b_prm: float, b_orm: float) -> float:
    """s(s) = b_value * v + b_PRM * PRM + b_ORM * E[ORM]  (Sec. 4.4)."""
    return b_value * v + b_prm * prm + b_orm * orm


class Critics:
    """What the search asks of the critics. ``critic`` (a `model.Critic`, or None: every learned signal 0.5)
    supplies the heads it has; ``orm`` is 'learned' (its orm head), 'exact' (the answer checker against
    ``gold``: only where answers are known, e.g. the training problems of the improvement loop) or 'none'."""

    def __init__(self, critic: Any, stepper: Stepper, b_value: float = 1.0, b_prm: float = 1.0, b_orm: float = 1.0,
                 orm: str = "learned") -> None:
        self.critic, self.stepper, self.orm = critic, stepper, orm
        self.b = {"value": b_value, "prm": b_prm, "orm": b_orm}
        heads = set(critic.heads) if critic is not None else set()
        for name in ("value", "prm"):
            if name not in heads:
                self.b[name] = 0.0  # a critic that is not there does not vote
        if orm == "none" or (orm == "learned" and "orm" not in heads):
            self.b["orm"] = 0.0
        self.gold: str | None = None
        self.pad = stepper.tokenizer.pad_token_id if stepper.tokenizer.pad_token_id is not None else 0

    def evaluate(self, seqs: list[list[int]]) -> dict[str, list[float]]:
        """value / prm (and learned orm) at the last token of each sequence; 0.5 where a head is missing."""
        out = self.critic.at_last(seqs, self.pad) if self.critic is not None else {}
        return {h: out.get(h, [0.5] * len(seqs)) for h in ("value", "prm", "orm")}

    def orm_of(self, seq: list[int], text: str) -> float:
        if self.orm == "exact":
            return float(self.gold is not None and verified(text, self.gold))
        if self.orm == "learned" and self.critic is not None and "orm" in self.critic.heads:
            return self.critic.at_last([seq], self.pad)["orm"][0]
        return 0.0

    def score(self, v: float, prm: float, orm: float | None) -> float:
        """The weighted score, scaled by the weights in play (ORM drops out where no rollout was run)."""
        b = dict(self.b)
        if orm is None:
            b["orm"], orm = 0.0, 0.0
        total = sum(b.values())
        if total <= 0:
            return 0.0
        return weighted_score(v, prm, orm, b["value"], b["prm"], b["orm"]) / total


# --------------------------------------------------------------------------- training data


def critic_examples(problems: list[dict], completions: list[list[str]], stepper: Stepper,
                    max_len: int = 256) -> list[dict]:
    """One example per sampled trajectory: token ids and the (position, target) lists of each head."""
    out = []
    for prob, comps in zip(problems, completions):
        rewards = [float(verified(c, prob["answer"])) for c in comps]  # right answer by valid steps
        through: dict[str, list[float]] = defaultdict(list)  # prefix text -> returns of trajectories through it
        for c, r in zip(comps, rewards):
            for k in range(1, len(_steps(c)) + 1):
                through["".join(_steps(c)[:k])].append(r)
        p_ids = stepper.encode(prompt(prob["question"]))
        for c, r in zip(comps, rewards):
            ids, v_pos, p_pos, p_tgt = list(p_ids), [len(p_ids) - 1], [], []
            for k, step in enumerate(_steps(c), 1):
                ids += stepper.encode(step)
                if len(ids) > max_len:
                    break
                v_pos.append(len(ids) - 1)
                p_pos.append(len(ids) - 1)
                p_tgt.append(sum(through["".join(_steps(c)[:k])]) / len(through["".join(_steps(c)[:k])]))
            ids = ids[:max_len]
            out.append({"ids": ids, "v_pos": v_pos, "r": r, "p_pos": p_pos, "p_tgt": p_tgt, "o_pos": len(ids) - 1})
    return out


def _steps(text: str) -> list[str]:
    """A completion split into its options (lines, each with its newline)."""
    return [s for s in text.splitlines(keepends=True) if s]


class CriticData(Dataset):
    """Fixed-width tensors per example (default collation): ids, mask, and per-head target/mask rows."""

    def __init__(self, examples: list[dict], pad_id: int) -> None:
        self.examples, self.pad = examples, pad_id
        self.width = max(len(e["ids"]) for e in examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, T = self.examples[i], self.width
        ids = torch.full((T,), self.pad, dtype=torch.long)
        ids[:len(e["ids"])] = torch.tensor(e["ids"])
        mask = torch.zeros(T, dtype=torch.long)
        mask[:len(e["ids"])] = 1
        rows = {k: torch.zeros(T) for k in ("v_m", "v_t", "p_m", "p_t", "o_m", "o_t")}
        rows["v_m"][e["v_pos"]] = 1.0
        rows["v_t"][e["v_pos"]] = e["r"]
        if e["p_pos"]:
            rows["p_m"][e["p_pos"]] = 1.0
            rows["p_t"][e["p_pos"]] = torch.tensor(e["p_tgt"])
        rows["o_m"][e["o_pos"]] = 1.0
        rows["o_t"][e["o_pos"]] = e["r"]
        return {"input_ids": ids, "attention_mask": mask, **rows}


def critic_loss(critic: Any, batch: dict) -> torch.Tensor:
    """Value: MSE of sigmoid(v) to the return (the paper's loss); PRM and ORM: binary cross-entropy (the paper
    phrases them as True/False text generation; a scalar head is the same binary classifier)."""
    logits = critic(batch["input_ids"], batch["attention_mask"])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    total = torch.zeros((), device=batch["input_ids"].device)
    for head, m, t in (("value", "v_m", "v_t"), ("prm", "p_m", "p_t"), ("orm", "o_m", "o_t")):
        if head not in logits or batch[m].sum() == 0:
            continue
        if head == "value":
            per = (torch.sigmoid(logits[head]) - batch[t]) ** 2
        else:
            per = bce(logits[head], batch[t], reduction="none")
        total = total + (per * batch[m]).sum() / batch[m].sum()
    return total
