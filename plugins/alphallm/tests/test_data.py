"""Data: the exact checker parses '#### n' as GSM8K does, the GSM8K JSONL reader (and its errors), the problem
generator's solutions are right and its test split is disjoint from training."""

from __future__ import annotations

import json
import re

import pytest
from paperloom_alphallm.components import build_arithmetic
from paperloom_alphallm.data import INVALID, extract_answer, is_correct, read_gsm8k, steps_valid, verified

from paperloom import UserError


@pytest.mark.parametrize("text,want", [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("#### 1,234", "1234"),            # GSM8K strips thousands separators
    ("#### -5\n", "-5"),
    ("#### 3.50", "3.50"),             # kept as written: GSM8K compares strings
    ("#### 7 apples", "7"),
    ("#### 8\n#### 9", "8"),           # the first answer line counts (re.search)
    ("####5", INVALID),                # GSM8K needs the space
    ("the answer is 5", INVALID),
    ("#### x", INVALID),
])
def test_extract_answer_as_gsm8k(text, want):
    assert extract_answer(text) == want


def test_is_correct_compares_answers_like_gsm8k():
    assert is_correct("3+2=5\n#### 5\n", "3+2=5\n#### 5")
    assert not is_correct("3+2=6\n#### 6\n", "3+2=5\n#### 5")
    assert is_correct("#### 1,000", "#### 1000")
    assert not is_correct("#### 5.0", "#### 5")  # GSM8K's is_correct is string equality after comma removal
    assert not is_correct("no answer", "#### 5") and not is_correct("#### 5", "no gold answer")


def test_verified_needs_the_right_answer_by_valid_steps():
    gold = "5+3=8\n8+3=11\n#### 11"
    assert verified("5+3=8\n8+3=11\n#### 11\n", gold)
    assert is_correct("5+3=7\n7+3=11\n#### 11\n", gold) and not verified("5+3=7\n7+3=11\n#### 11\n", gold)
    assert not verified("5+3=8\n8+3=11\n#### 12\n", gold)
    assert steps_valid("Natalia sold 48/2 = 24 clips in May.\n48+24 = 72\n#### 72")  # GSM8K style
    assert steps_valid("1,000 - 5 = 995, then 3 x 4 = 12 and 7 * 2 = 14") and steps_valid("no equations")
    assert not steps_valid("12-4=8\n8-4=5") and not steps_valid("6/0=1") and not steps_valid("2.5*2=4")
    rng = __import__("random").Random(0)
    for p in build_arithmetic(None, n=50, seed=3):  # every generated gold solution verifies
        assert verified(p["answer"], p["answer"])
        lines = p["answer"].splitlines()
        k = rng.randrange(len(lines) - 1)  # corrupt one result: the chain no longer holds
        a, c = lines[k].split("=")
        lines[k] = f"{a}={int(c) + 1}"
        assert not steps_valid("\n".join(lines))


def test_read_gsm8k_jsonl(tmp_path):
    path = tmp_path / "test.jsonl"
    rows = [{"question": "Natalia sold clips to 48 friends in April, and half as many in May. How many?",
             "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nAltogether 48+24 = <<48+24=72>>72.\n#### 72"},
            {"question": "q2", "answer": "#### 1,000"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    got = read_gsm8k(path)
    assert len(got) == 2 and got[0]["question"] == rows[0]["question"]
    assert "<<" not in got[0]["answer"] and extract_answer(got[0]["answer"]) == "72"
    assert len(read_gsm8k(path, max_rows=1)) == 1


@pytest.mark.parametrize("content,msg", [
    ('{"question": "a", "answer": "#### 1"}\n{not json\n', "line 2 is not valid JSON"),
    ('{"answer": "#### 1"}\n', "line 1: expected an object with string fields"),
    ("\n\n", "holds no problems"),
])
def test_read_gsm8k_errors_name_the_file_and_line(tmp_path, content, msg):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(msg)):
        read_gsm8k(path)
    with pytest.raises(UserError, match="does not exist"):
        read_gsm8k(tmp_path / "missing.jsonl")


def test_generated_solutions_are_right_and_splits_disjoint():
    train = build_arithmetic(None, n=500, seed=3)
    test = build_arithmetic(None, n=100, seed=3, split="test")
    assert not {p["question"] for p in train} & {p["question"] for p in test}
    for p in train + test:
        steps = p["answer"].splitlines()
        value = int(re.search(r"has (\d+)", p["question"]).group(1))
        days = int(re.search(r"after (\d+) days", p["question"]).group(1))
        assert len(steps) - 1 == days
        for line in steps[:-1]:  # each step applies the day's change to the running count
            a, op, b, c = re.fullmatch(r"(\d+)([+-])(\d+)=(\d+)", line).groups()
            assert int(a) == value and int(c) == (int(a) + int(b) if op == "+" else int(a) - int(b)) >= 0
            value = int(c)
        assert steps[-1] == f"#### {value}" and 2 <= days <= 3
    with pytest.raises(UserError, match="split"):
        build_arithmetic(None, split="val")


def test_problem_tokenizer_ids_do_not_depend_on_the_process():
    """Token ids must be the same in every process (hash randomisation must not reorder the vocabulary)."""
    import os
    import subprocess
    import sys

    code = ("from paperloom_alphallm.synthetic import problem_tokenizer; t = problem_tokenizer(); "
            "print(t('Ann has 19 eggs. Each day Ann sells 2. ####', add_special_tokens=False)['input_ids'])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(s)}).stdout for s in (1, 2)}
    assert len(outs) == 1
