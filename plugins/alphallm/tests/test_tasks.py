"""The tasks end to end on tiny sizes through the core runner; search over worker processes gives the same
results as one process; bad inputs are one-line errors; a policy from another plugin composes."""

from __future__ import annotations

import json

import pytest
from conftest import run_ctx

from paperloom import UserError
from paperloom.runner import execute

POLICY = "policy_args={n_layer: 1, n_embd: 32, n_head: 2, n_positions: 256}"
SEARCH = ["search.rollouts=6", "search.c_min0=2", "search.c_max0=3", "search.c_max=2", "search.fast_rollouts=1",
          "search.max_depth=4"]
CRITICS = ["critics.problems=4", "critics.samples=2", "critics.trainer.max_steps=2", "critics.trainer.batch_size=4"]


def run(task, tmp_path, *overrides, name=None):
    return execute(f"alphallm:{task}", overrides=list(overrides), out=tmp_path / (name or task), device="cpu",
                   plot=False)


@pytest.fixture(scope="module")
def critic_run(tmp_path_factory):
    return run("train-critics", tmp_path_factory.mktemp("runs"), POLICY, "data_args={n: 4}", *CRITICS)


def test_train_critics_then_search_and_evaluate_with_them(critic_run, tmp_path):
    out, m = critic_run
    assert (out / "critic" / "critic.json").is_file() and m["critic_examples"] == 8
    critic = f"critic={out / 'critic'}"
    out, m = run("search", tmp_path, POLICY, critic, "data_args={n: 3}", *SEARCH)
    rows = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and m["problems"] == 3 and 0 <= m["accuracy"] <= 1
    assert all(r["rollouts"] >= 1 and "solution" in r for r in rows)
    out, m = run("evaluate", tmp_path, POLICY, critic, "data_args={n: 3, split: test}", "budgets=[4]", *SEARCH)
    assert {"greedy_accuracy_b4", "sc_accuracy_b4", "rerank_accuracy_b4", "mcts_accuracy_b4"} <= set(m)
    assert m["sc_rollouts_b4"] <= m["mcts_rollouts_b4"]  # the baselines never get more options than the search
    assert (out / "accuracy_vs_budget.png").is_file()


def test_improve_and_synthesize(tmp_path):
    out, m = run("improve", tmp_path, POLICY, "data_args={n: 10}", "eval_data_args={n: 2, split: test}",
                 "improve.rounds=1", "improve.problems=3", "improve.keep=score", "improve.threshold=0.0",
                 "improve.trainer.max_steps=2", "improve.trainer.batch_size=2", *SEARCH, *CRITICS)
    assert (out / "model" / "config.json").is_file() and (out / "rounds.png").is_file()
    assert {"greedy_accuracy_round0", "greedy_accuracy_round1", "mcts_accuracy_round1", "kept_round1"} <= set(m)
    out, m = run("synthesize", tmp_path, POLICY, "n=2", "seeds_args={n: 5}")
    assert (out / "problems.jsonl").is_file() and m["generated"] >= m["synthesized"]
    out, m = run("synthesize", tmp_path, "generator=alphallm:arithmetic", "n=4", name="gen")
    rows = [json.loads(x) for x in (out / "problems.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all("####" in r["answer"] for r in rows)


def test_improve_killed_after_round_1_resumes_to_the_unbroken_result(tmp_path, monkeypatch):
    from paperloom_alphallm import self_improve

    args = [POLICY, "data_args={n: 8}", "eval_data_args={n: 2, split: test}", "improve.rounds=2", "improve.problems=3",
            "improve.keep=score", "improve.threshold=0.0", "improve.trainer.max_steps=2",
            "improve.trainer.batch_size=2", *SEARCH, *CRITICS]
    _, whole = run("improve", tmp_path, *args, name="whole")
    real, calls, alive = self_improve.improve_round, [], {"dies": True}

    def killed_in_round_2(ctx, name, *a, **kw):
        calls.append(name)
        if name == "round2" and alive["dies"]:
            raise RuntimeError("killed")  # the run dies during round 2: round 1 is finished and saved
        return real(ctx, name, *a, **kw)

    monkeypatch.setattr(self_improve, "improve_round", killed_in_round_2)
    with pytest.raises(RuntimeError, match="killed"):
        run("improve", tmp_path, *args, name="broken")
    round1 = tmp_path / "broken" / "stages" / "round1" / "result.json"
    assert calls == ["round1", "round2"] and round1.is_file()
    stamp = round1.stat().st_mtime_ns
    calls.clear()
    alive["dies"] = False
    _, resumed = execute("alphallm:improve", out=tmp_path / "broken", resume=True, device="cpu", plot=False)
    assert calls == ["round2"]  # round 1 was loaded, not searched and fine-tuned again
    assert round1.stat().st_mtime_ns == stamp
    assert resumed == pytest.approx(whole) and {"greedy_accuracy_round2", "kept_round2"} <= set(resumed)


def test_search_is_identical_over_worker_processes(tmp_path, tok, stepper, policy, search_cfg):
    from paperloom_alphallm.components import build_arithmetic
    from paperloom_alphallm.critics import Critics
    from paperloom_alphallm.self_improve import search_problems

    problems = build_arithmetic(None, n=4, seed=5)
    crit = Critics(None, stepper, orm="exact")
    search_cfg.orm = "exact"
    one = search_problems(run_ctx(tmp_path / "a", workers=1, seed=7), problems, policy, stepper, crit, search_cfg)
    two = search_problems(run_ctx(tmp_path / "b", workers=2, seed=7), problems, policy, stepper, crit, search_cfg)
    assert one == two
    other = search_problems(run_ctx(tmp_path / "c", workers=1, seed=8), problems, policy, stepper, crit, search_cfg)
    assert other != one  # the run seed matters


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run("search", tmp_path, POLICY, "data=alphallm:gsm8k", "data_args={path: /nope.jsonl}", *SEARCH)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "no final line"}\n')
    with pytest.raises(UserError, match="no final '#### n' answer"):
        run("evaluate", tmp_path, POLICY, "data=alphallm:gsm8k", f"data_args={{path: {bad}}}", name="ev")
    with pytest.raises(UserError, match="not a critic folder"):
        run("search", tmp_path, POLICY, f"critic={tmp_path}", "data_args={n: 2}", *SEARCH, name="s2")


def test_gsm8k_file_through_search(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"question": "Ann has 3 eggs. Each day Ann gets 2. How many eggs after 2 days?",
                                "answer": "3+2=<<3+2=5>>5\n5+2=<<5+2=7>>7\n#### 7"}) + "\n")
    out, m = run("search", tmp_path, POLICY, "data=alphallm:gsm8k", f"data_args={{path: {path}}}",
                 "search.orm=exact", *SEARCH)
    assert m["problems"] == 1 and "accuracy" in m


@pytest.mark.cross_plugin
def test_a_megalodon_policy_searches(tmp_path, stepper, search_cfg):
    pytest.importorskip("paperloom_megalodon")
    from paperloom_alphallm.critics import Critics
    from paperloom_alphallm.eta_mcts import EtaMCTS
    from paperloom_alphallm.options import sample_options
    from reference import greedy_no_cache

    model = run_ctx(tmp_path).build("megalodon:tiny", vocab_size=len(stepper.tokenizer)).eval()
    prefix = stepper.encode("Q: Ann has 3 eggs.\nA:\n")
    newline = {i for i in range(len(stepper.tokenizer)) if bool(stepper.newline[i])}
    want = greedy_no_cache(model, prefix, newline, stepper.tokenizer.eos_token_id, stepper.max_step_tokens)
    assert [o.ids for o in sample_options(model, prefix, 3, stepper, 0.0)] == [want] * 3  # its cache, batched
    r = EtaMCTS(model, stepper, Critics(None, stepper, orm="none"), search_cfg).search("Ann has 3 eggs.")
    assert r.nodes > 1 and r.rollouts >= 1
