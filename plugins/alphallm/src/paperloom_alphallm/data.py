"""Reasoning problems: the GSM8K JSONL format (``{"question", "answer"}`` with a final ``#### n`` line), the
exact answer checker GSM8K's own evaluation uses, and the prompt / solution layout of the policy."""

from __future__ import annotations

import json
import re
from pathlib import Path

from paperloom import UserError

ANSWER_MARK = "####"
# GSM8K (openai/grade-school-math, dataset.py): ANS_RE = re.compile(r"#### (\-?[0-9\.\,]+)"); commas stripped.
ANS_RE = re.compile(r"#### (\-?[0-9\.\,]+)")
INVALID = "[invalid]"


def extract_answer(completion: str) -> str:
    """The final answer after '#### ' as GSM8K parses it (commas removed), or '[invalid]'."""
    match = ANS_RE.search(completion)
    if not match:
        return INVALID
    return match.group(1).strip().replace(",", "")


def is_correct(completion: str, gold: str) -> bool:
    """Exact ORM for verifiable answers: the completion's '#### n' equals the gold solution's."""
    want = extract_answer(gold) if ANSWER_MARK in gold else gold.strip().replace(",", "")
    return want != INVALID and extract_answer(completion) == want  # string equality, as GSM8K's is_correct


EQUATION_RE = re.compile(r"(\-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*([-+*/x])\s*(\-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*=\s*"
                         r"(\-?[0-9][0-9,]*(?:\.[0-9]+)?)")


def steps_valid(completion: str) -> bool:
    """Every equation `a op b = c` written in the solution holds (commas removed; `x` is times): the exact
    check of the *process* a verifiable domain allows. Solutions without equations pass."""
    for a, op, b, c in EQUATION_RE.findall(completion):
        a, b, c = (float(v.replace(",", "")) for v in (a, b, c))
        want = a + b if op == "+" else a - b if op == "-" else a * b if op in "*x" else (a / b if b else None)
        if want is None or abs(want - c) > 1e-6 * max(1.0, abs(want)):
            return False
    return True


def verified(completion: str, gold: str) -> bool:
    """The right final answer reached by valid steps: what the self-improvement filter and the critics'
    training targets use where answers are known. A right answer after a wrong step (e.g. '5+3=7\n7+3=11\n
    #### 11') does not count: fine-tuning on such trajectories taught the demo's policy wrong arithmetic."""
    return is_correct(completion, gold) and steps_valid(completion)


def prompt(question: str) -> str:
    """The state the search starts from; each option (reasoning step) then ends at a newline (Sec. 4.3.1)."""
    return f"Q: {question}\nA:\n"


def document(question: str, answer: str) -> str:
    """Prompt + solution: one pre-training / SFT text."""
    return prompt(question) + answer.strip() + "\n"


def clean_solution(answer: str) -> str:
    """GSM8K solutions carry calculator annotations <<48/2=24>>; the policy writes plain steps."""
    return re.sub(r"<<[^>]*>>", "", answer)


def read_gsm8k(path: str | Path, max_rows: int = 0) -> list[dict[str, str]]:
    """Rows of a GSM8K-style JSONL file: each line an object with string fields 'question' and 'answer'."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"data path {str(path)!r} does not exist; give a GSM8K-style .jsonl file "
                        "(one {\"question\": ..., \"answer\": ... #### n} object per line)")
    rows: list[dict[str, str]] = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{path} line {i + 1} is not valid JSON; fix or remove that line") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not isinstance(
                row.get("answer", ""), str):
            raise UserError(f"{path} line {i + 1}: expected an object with string fields 'question' and 'answer'")
        rows.append({"question": row["question"], "answer": clean_solution(row.get("answer", ""))})
        if max_rows and len(rows) >= max_rows:
            break
    if not rows:
        raise UserError(f"{path} holds no problems; expected JSONL rows with 'question' and 'answer'")
    return rows
