"""Options: batched generation reusing the prefix KV cache is token-identical to unbatched greedy decoding
without any cache (tests/reference.py), for GPT-2 and Llama; options stop at newlines, rollouts after the answer."""

from __future__ import annotations

import pytest
import torch
from conftest import ScriptedLM, tiny_policy
from paperloom_alphallm.data import prompt
from paperloom_alphallm.options import n_steps, rollout, sample_options, sample_options_uncached
from reference import greedy_no_cache


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_cached_options_equal_unbatched_greedy(tok, stepper, kind, seed):
    model = tiny_policy(tok, kind, seed)
    newline = {i for i in range(len(tok)) if "\n" in tok.decode([i])}
    for question in ("Ann has 3 eggs. Ann gets 2. How many eggs?", "Q", "Eli has 19 coins. Eli sells 9."):
        prefix = stepper.encode(prompt(question))
        want = greedy_no_cache(model, prefix, newline, tok.eos_token_id, stepper.max_step_tokens)
        for n in (1, 3):
            got = sample_options(model, prefix, n, stepper, temperature=0.0)
            assert [o.ids for o in got] == [want] * n
        assert [o.ids for o in sample_options_uncached(model, prefix, 2, stepper, 0.0)] == [want] * 2


def test_sampled_rows_differ_and_logprobs_are_the_policy_s(tok, stepper, policy):
    prefix = stepper.encode(prompt("Ann has 3 eggs."))
    torch.manual_seed(0)
    opts = sample_options(policy, prefix, 6, stepper, temperature=1.0)
    assert len({tuple(o.ids) for o in opts}) > 1
    o = opts[0]
    with torch.no_grad():  # sum of log pi(token | prefix, earlier tokens), recomputed without a cache
        logits = policy(input_ids=torch.tensor([prefix + o.ids])).logits[0].log_softmax(-1)
    want = sum(float(logits[len(prefix) - 1 + k, t]) for k, t in enumerate(o.ids))
    assert o.logprob == pytest.approx(want, abs=1e-4)


def test_options_stop_at_newlines_and_rollouts_after_the_answer_line(tok, stepper):
    p = stepper.encode(prompt("x"))
    lm = ScriptedLM(tok, "3+2=5\n5-1=4\n#### 4\nQ: more", len(p))
    step = sample_options(lm, p, 2, stepper, 0.0)
    assert [o.text for o in step] == ["3+2=5\n"] * 2 and not step[0].terminal
    full = rollout(lm, p, 1, stepper, 0.0)[0]
    assert full.text == "3+2=5\n5-1=4\n#### 4\n" and full.terminal and n_steps(full.text) == 3
    last = sample_options(lm, p + stepper.encode("3+2=5\n5-1=4\n"), 1, stepper, 0.0)[0]
    assert last.text == "#### 4\n" and last.terminal
    eos = ScriptedLM(tok, "3+2=5", len(p))
    o = rollout(eos, p, 1, stepper, 0.0)[0]
    assert o.text == "3+2=5" and o.eos and o.terminal
