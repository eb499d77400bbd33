"""The tasks end to end on tiny generated text (CPU): inherit, train (budget, resume), evaluate, components."""

from __future__ import annotations

import json
import random

import pytest
import torch

from paperloom import UserError
from paperloom.run import execute
from paperloom.testing import assert_conforms

TINY = ["data.vocab_size=300", "data.block_size=16", "data.val_fraction=0.1"]
STEPS = {"max_steps": 4, "val_every": 2, "checkpoint_every": 2, "batch_size": 4, "log_every": 1}


def test_conforms():
    assert_conforms("inheritune")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A generated text file: sentences about numbers, enough for a few hundred tokens."""
    rng = random.Random(0)
    words = "the cat dog sat ran on under mat log big small red blue one two three four five".split()
    lines = [" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(300)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n\n".join(lines))
    return str(path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    """A 4-block GPT-2 reference trained for a few steps by inheritune:train, exported with its tokenizer."""
    out = tmp_path_factory.mktemp("runs") / "ref"
    _, metrics = execute("inheritune:train", out=out, device="cpu", plot=False, overrides=[
        f"data.source={corpus}", *TINY, "model_args={n_layer: 4, n_embd: 32, n_head: 2, n_positions: 32}",
        f"trainer={json.dumps(STEPS)}"])
    assert metrics["val_loss"] < metrics["init_val_loss"]
    return out / "model"


def test_train_lowers_loss_and_changes_every_parameter(reference):
    from transformers import AutoModelForCausalLM

    assert (reference / "tokenizer.json").is_file()
    trained = AutoModelForCausalLM.from_pretrained(str(reference))
    torch.manual_seed(0)  # the same seed builds the same initial model
    from paperloom.lm_components import build_gpt2

    init = build_gpt2(vocab_size=trained.config.vocab_size, n_layer=4, n_embd=32, n_head=2, n_positions=32)
    for (name, p), q in zip(trained.named_parameters(), init.parameters()):
        assert not torch.equal(p, q), f"{name} did not change"


def test_demo_resumes_and_skips_finished_stages(corpus, tmp_path):
    from paperloom_inheritune.demo import curves

    out = tmp_path / "demo"
    args = [f"data.source={corpus}", *TINY, "model_args={n_layer: 2, n_embd: 32, n_head: 2, n_positions: 32}",
            "inherit.k=1", "seeds=[0]", f"trainer={json.dumps(STEPS)}", f"student_trainer={json.dumps(STEPS)}"]
    _, first = execute("inheritune:demo", out=out, device="cpu", plot=False, overrides=args)
    assert (out / "demo_curves.png").is_file() and (out / "reference" / "tokenizer.json").is_file()
    assert set(curves(out / "metrics.jsonl")) == {"reference", "inherited-s0", "random-s0"}
    (out / "stages" / "random-s0" / "result.json").unlink()  # as if killed during the last stage
    _, again = execute("inheritune:demo", out=out, resume=True, device="cpu", plot=False)
    log = (out / "run.log").read_text()
    assert "reference: already finished, skipped" in log and "inherited-s0: already finished, skipped" in log
    assert again["inherited_val_loss_s0"] == first["inherited_val_loss_s0"]
    assert again["random_val_loss_s0"] == pytest.approx(first["random_val_loss_s0"], abs=1e-5)


def test_inherit_task_then_train_the_student_on_a_token_budget(reference, corpus, tmp_path):
    _, m = execute("inheritune:inherit", out=tmp_path / "inh", device="cpu", plot=False,
                   overrides=[f"reference={reference}", "inherit.k=2"])
    student = tmp_path / "inh" / "student"
    assert m["blocks_copied"] == 2 and m["sliced"] == 1.0 and m["bytes_read"] > 0
    assert (student / "tokenizer.json").is_file() and json.loads((student / "config.json").read_text())["n_layer"] == 2
    _, t = execute("inheritune:train", out=tmp_path / "tr", device="cpu", plot=False, overrides=[
        f"model={student}", f"data.source={corpus}", *TINY, "budget_tokens=64", f"trainer={json.dumps(STEPS)}"])
    assert t["train_tokens"] == 64 and t["steps"] == 4  # 4 blocks of 16 tokens, several epochs
    assert t["val_loss"] < t["init_val_loss"]


def test_train_resumes_a_killed_run(reference, corpus, tmp_path):
    out = tmp_path / "run"
    args = [f"model={reference}", f"data.source={corpus}", *TINY, f"trainer={json.dumps({**STEPS, 'max_steps': 2})}"]
    execute("inheritune:train", out=out, device="cpu", plot=False, overrides=args)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    _, m = execute("inheritune:train", out=out, resume=True, device="cpu", plot=False,
                   overrides=["trainer.max_steps=4"])
    assert m["steps"] == 4
    assert "resuming from" in (out / "run.log").read_text()


def test_train_budget_errors(reference, corpus, tmp_path):
    with pytest.raises(UserError, match="budget_tokens = 10000000 exceeds"):
        execute("inheritune:train", out=tmp_path / "b", device="cpu", plot=False,
                overrides=[f"model={reference}", f"data.source={corpus}", *TINY, "budget_tokens=10000000"])
    with pytest.raises(UserError, match="no checkpoint folder with config.json"):
        execute("inheritune:train", out=tmp_path / "c", device="cpu", plot=False,
                overrides=[f"model={tmp_path}/nothing"])


def test_evaluate_val_loss_and_multiple_choice(reference, corpus, tmp_path):
    from paperloom_inheritune.evaluate import read_mc, score_mc
    from transformers import AutoModelForCausalLM

    from paperloom.lm import load_tokenizer

    mc = tmp_path / "mc.jsonl"
    mc.write_text("\n".join(json.dumps(r) for r in [
        {"question": "the cat sat on the", "choices": ["mat.", "zzzz qqq"], "answer": 0},
        {"question": "one two three", "choices": ["four", "xylophone"], "answer": "A"}]))
    _, m = execute("inheritune:evaluate", out=tmp_path / "val", device="cpu", plot=False, overrides=[
        f"model={reference}", f"data.source={corpus}", *TINY, f"mc_file={mc}"])
    assert 0 <= m["mc_acc"] <= 1 and m["mc_questions"] == 2 and m["val_ppl"] > 1
    model, tok = AutoModelForCausalLM.from_pretrained(str(reference)), load_tokenizer(reference)
    letters = score_mc(model, tok, read_mc(mc), "letters")
    assert letters["mc_questions"] == 2 and letters["mc_acc"] == letters["mc_acc_norm"]
    _, full = execute("inheritune:evaluate", out=tmp_path / "all", device="cpu", plot=False,
                      overrides=[f"model={reference}", f"data.source={corpus}", *TINY, "split=all"])
    assert full["eval_tokens"] > m["eval_tokens"]


@pytest.mark.parametrize("text,match", [("{not json", "line 1 is not valid JSON"),
                                        ('{"question": "q", "choices": ["a"], "answer": 0}', "at least 2 strings"),
                                        ('{"question": "q", "choices": ["a", "b"], "answer": 5}', "'answer' = 5"),
                                        ('{"choices": ["a", "b"], "answer": 0}', "string field 'question'"),
                                        ("", "no questions")])
def test_malformed_mc_file(tmp_path, text, match):
    from paperloom_inheritune.evaluate import read_mc

    path = tmp_path / "mc.jsonl"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        read_mc(path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loglikelihood_matches_token_by_token_reference(reference, seed):
    """log p(continuation | context) equals the sum of next-token log-probs from separate forward passes."""
    from paperloom_inheritune.evaluate import loglikelihood
    from transformers import AutoModelForCausalLM

    from paperloom.lm import load_tokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(str(reference)).eval(), load_tokenizer(reference)
    rng = random.Random(seed)
    context = " ".join(rng.choice(["the", "cat", "sat", "on", "mat"]) for _ in range(rng.randint(1, 6)))
    continuation = " " + " ".join(rng.choice(["big", "red", "dog", "ran"]) for _ in range(rng.randint(1, 4)))
    ids = tok(context, add_special_tokens=False)["input_ids"]
    expected = 0.0
    with torch.no_grad():
        for t in tok(continuation, add_special_tokens=False)["input_ids"]:
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            expected += float(torch.log_softmax(logits, -1)[t])
            ids = ids + [t]
    assert loglikelihood(model, tok, context, continuation) == pytest.approx(expected, abs=1e-4)


def test_student_component_composes_with_core_train_lm(reference, corpus, tmp_path):
    """Another plugin's task (the core's train-lm) trains an Inheritune student by component name."""
    _, m = execute("core:train-lm", out=tmp_path / "c", device="cpu", plot=False, overrides=[
        "model=inheritune:student", f"model_args={{reference: {reference}, k: 1}}", f"data.source={corpus}", *TINY,
        f"data.tokenizer={reference}", "trainer.max_steps=2", "trainer.batch_size=4", "export=false"])
    assert m["val_loss"] < m["init_val_loss"]


def test_trainer_and_evaluator_components(reference, corpus, tmp_path):
    from transformers import AutoModelForCausalLM

    from paperloom.lm import text_data
    from paperloom.plugins import registry
    from paperloom.run import build_component
    from paperloom.schemas import TextDataConfig

    class Ctx:
        out, seed, resume, device = tmp_path, 0, False, "cpu"
        checkpoint_dir = tmp_path / "checkpoints"
        log = __import__("logging").getLogger("test")

        def log_metrics(self, metrics, step=None):
            pass

    reg = registry()
    _, train, val = text_data(TextDataConfig(source=corpus, tokenizer=str(reference), block_size=16, val_fraction=0.1))
    model = AutoModelForCausalLM.from_pretrained(str(reference))
    fit = build_component(reg, "inheritune:pretrain", max_steps=2, batch_size=16, lr=1e-3)
    assert fit(model, train, val, Ctx())["steps"] == 2
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"question": "the cat", "choices": ["sat", "qq"], "answer": 0}))
    evaluate = build_component(reg, "inheritune:mc-eval", mc_file=str(mc), tokenizer=str(reference))
    assert evaluate(model)["mc_questions"] == 1
