"""Multiple-choice scoring: the reader's errors, log-likelihood parity with a token-by-token reference, and the
`inheritune:mc-eval` evaluator run by `lm:evaluate` beside `lm:perplexity`."""

from __future__ import annotations

import json
import random

import pytest
from reference import loglikelihood_token_by_token

from paperloom import UserError
from paperloom.runner import execute

QUESTIONS = [{"question": "the cat sat on the", "choices": ["mat.", "zzzz qqq"], "answer": 0},
             {"question": "one two three", "choices": ["four", "xylophone"], "answer": "A"}]


@pytest.fixture
def mc_file(tmp_path):
    path = tmp_path / "mc.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in QUESTIONS))
    return path


def load(folder):
    from paperloom_lm.data import load_tokenizer
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder)).eval(), load_tokenizer(folder)


def test_lm_evaluate_runs_mc_eval_beside_perplexity(reference, corpus, tiny, mc_file, tmp_path):
    data, _ = tiny
    evaluators = ["evaluators=[lm:perplexity,inheritune:mc-eval]",
                  f"evaluator_args={{inheritune:mc-eval: {{mc_file: {mc_file}}}}}"]
    _, m = execute("lm:evaluate", out=tmp_path / "val", device="cpu", plot=False, overrides=[
        f"model={reference}", f"data.source={corpus}", *data, "split=val", *evaluators])
    assert 0 <= m["mc_acc"] <= 1 and m["mc_questions"] == 2 and m["val_ppl"] > 1
    _, full = execute("lm:evaluate", out=tmp_path / "all", device="cpu", plot=False, overrides=[
        f"model={reference}", f"data.source={corpus}", *data, "split=all", *evaluators[:1],
        f"evaluator_args={{inheritune:mc-eval: {{mc_file: {mc_file}, mc_format: letters, limit: 1}}}}"])
    assert full["mc_questions"] == 1 and full["mc_acc"] == full["mc_acc_norm"] and full["val_ppl"] > 1


def test_letters_format_scores_one_letter_per_choice(reference, mc_file):
    from paperloom_inheritune.mc_eval import read_mc, score_mc

    model, tok = load(reference)
    letters = score_mc(model, tok, read_mc(mc_file), "letters")
    assert letters["mc_questions"] == 2 and letters["mc_acc"] == letters["mc_acc_norm"]
    assert read_mc(mc_file)[1]["answer"] == 0  # the letter "A" is choice 0


def test_evaluator_component(reference, mc_file, tmp_path):
    from paperloom.context import Run

    ctx = Run(out=tmp_path, plugin="inheritune", task="test")
    model, _ = load(reference)
    evaluate = ctx.build("inheritune:mc-eval", mc_file=str(mc_file), tokenizer=str(reference), limit=1)
    assert evaluate(model, None, ctx)["mc_questions"] == 1
    with pytest.raises(UserError, match="needs mc_file"):
        ctx.build("inheritune:mc-eval")
    with pytest.raises(UserError, match="mc_format = 'words'"):
        ctx.build("inheritune:mc-eval", mc_file=str(mc_file), mc_format="words")
    with pytest.raises(UserError, match="no tokenizer"):
        ctx.build("inheritune:mc-eval", mc_file=str(mc_file))(model, None, ctx)


@pytest.mark.parametrize("text,match", [("{not json", "line 1 is not valid JSON"),
                                        ('{"question": "q", "choices": ["a"], "answer": 0}', "at least 2 strings"),
                                        ('{"question": "q", "choices": ["a", "b"], "answer": 5}', "'answer' = 5"),
                                        ('{"choices": ["a", "b"], "answer": 0}', "string field 'question'"),
                                        ("", "no questions")])
def test_malformed_mc_file(tmp_path, text, match):
    from paperloom_inheritune.mc_eval import read_mc

    path = tmp_path / "mc.jsonl"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        read_mc(path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loglikelihood_matches_token_by_token_reference(reference, seed):
    """log p(continuation | context) equals the sum of next-token log-probs from separate forward passes."""
    from paperloom_inheritune.mc_eval import loglikelihood

    model, tok = load(reference)
    rng = random.Random(seed)
    context = " ".join(rng.choice(["the", "cat", "sat", "on", "mat"]) for _ in range(rng.randint(1, 6)))
    continuation = " " + " ".join(rng.choice(["big", "red", "dog", "ran"]) for _ in range(rng.randint(1, 4)))
    expected = loglikelihood_token_by_token(model, tok, context, continuation)
    assert loglikelihood(model, tok, context, continuation) == pytest.approx(expected, abs=1e-4)
