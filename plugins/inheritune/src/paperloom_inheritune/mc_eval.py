"""Multiple-choice log-likelihood scoring (the `inheritune:mc-eval` evaluator, run by `lm:evaluate`).

It follows how base-model harnesses (lm-evaluation-harness, the paper's MMLU numbers)
score: the model never generates; each choice's log-likelihood given the prompt is computed and the
highest wins. `continuation` scores each choice's text (`acc`) and its per-character normalisation
(`acc_norm`); `letters` lists the choices as `A. ...` and scores ` A`, ` B`, ... (MMLU).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from paperloom import UserError

LETTERS = "ABCDEFGHIJ"
FORMATS = ("continuation", "letters")


def read_mc(path: str | Path, limit: int = 0) -> list[dict]:
    """Rows {question, choices: [str, ...], answer: index or letter}; every error names the file and line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"mc_file {path} does not exist; pass a JSONL file of {{question, choices, answer}} rows")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {i} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise UserError(f"{path} line {i}: needs a string field 'question'")
        choices, answer = row.get("choices"), row.get("answer")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise UserError(f"{path} line {i}: 'choices' must be a list of at least 2 strings")
        if isinstance(answer, str) and len(answer) == 1 and answer.upper() in LETTERS:
            answer = LETTERS.index(answer.upper())
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise UserError(f"{path} line {i}: 'answer' = {row.get('answer')!r} must be a choice index "
                            f"0..{len(choices) - 1} or a letter")
        rows.append({"question": row["question"], "choices": choices, "answer": answer})
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise UserError(f"{path} holds no questions")
    return rows


@torch.no_grad()
def loglikelihood(model: Any, tokenizer: Any, context: str, continuation: str, device: str = "cpu") -> float:
    """log p(continuation | context), summed over the continuation's tokens (context truncated from the left)."""
    ctx_ids = tokenizer(context, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
    cont_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if not cont_ids:
        return 0.0
    limit = _max_positions(model)
    ids = (ctx_ids + cont_ids)[-limit:] if limit else ctx_ids + cont_ids
    n = min(len(cont_ids), len(ids) - 1)
    inp = torch.tensor([ids], device=device)
    logp = torch.log_softmax(model(input_ids=inp).logits[0, :-1].float(), dim=-1)
    targets = inp[0, 1:]
    return float(logp[-n:].gather(1, targets[-n:, None]).sum())


def _max_positions(model: Any) -> int:
    cfg = model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 0


def score_mc(model: Any, tokenizer: Any, rows: list[dict], fmt: str = "continuation",
             device: str = "cpu") -> dict[str, float]:
    """Accuracy of picking the highest-likelihood choice (and the length-normalised variant for continuations)."""
    was_training = model.training
    model.eval()
    correct = correct_norm = 0
    for row in rows:
        if fmt == "letters":
            listed = "\n".join(f"{LETTERS[j]}. {c}" for j, c in enumerate(row["choices"]))
            prompt = f"{row['question']}\n{listed}\nAnswer:"
            letters = LETTERS[: len(row["choices"])]
            scores = [loglikelihood(model, tokenizer, prompt, f" {letter}", device) for letter in letters]
            norm = scores
        else:
            prompt = row["question"]
            scores = [loglikelihood(model, tokenizer, prompt, " " + c.lstrip(), device) for c in row["choices"]]
            norm = [s / max(1, len(c)) for s, c in zip(scores, row["choices"])]
        correct += int(max(range(len(scores)), key=scores.__getitem__) == row["answer"])
        correct_norm += int(max(range(len(norm)), key=norm.__getitem__) == row["answer"])
    model.train(was_training)
    return {"mc_acc": correct / len(rows), "mc_acc_norm": correct_norm / len(rows), "mc_questions": float(len(rows))}
