"""The win-rate evaluator: judges (a local reward model), the KL estimator vs a plain per-sequence computation."""

from __future__ import annotations

import pytest
import torch
from conftest import run_ctx, tiny_policy

from paperloom import UserError


def test_reward_model_judge_and_the_evaluator_built_by_name(tok, tmp_path):
    from paperloom_tr_dpo.win_rate import reward_model_judge
    from transformers import GPT2Config, GPT2ForSequenceClassification

    rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_layer=1, n_embd=16, n_head=2, num_labels=1,
                                                  pad_token_id=tok.pad_token_id))
    rm.save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    score = reward_model_judge(str(tmp_path / "rm"))
    r = score(["tell me about tools:"] * 3, [" saw", " saw drill hoe", " cat"])
    assert len(r) == 3 and all(isinstance(x, float) for x in r)
    ctx = run_ctx(tmp_path)
    evaluate = ctx.build("tr-dpo:win-rate", judge=str(tmp_path / "rm"), baseline=tiny_policy(tok, 1), tokenizer=tok,
                         samples=2, max_new_tokens=6, prompts=3)
    m = evaluate(tiny_policy(tok, 2), ["tell me about tools:", "tell me about fruits:", "tell me about colors:"], ctx)
    assert 0.0 <= m["win_rate"] <= 1.0 and {"reward", "baseline_reward", "kl", "length"} <= set(m)
    with pytest.raises(UserError, match="sequence-classification"):
        reward_model_judge(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="needs baseline"):
        ctx.build("tr-dpo:win-rate", tokenizer=tok)


def test_win_rate_counts_ties_half():
    from paperloom_tr_dpo.win_rate import win_rate

    assert win_rate([1.0, 2.0, 0.0, 1.0], [0.0, 2.0, 1.0, 0.5]) == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError):
        win_rate([], [])


def test_kl_estimator_matches_a_plain_per_sequence_computation(tok):
    from paperloom_tr_dpo.win_rate import sample, sequence_logprobs

    for seed, n_embd in ((0, 16), (1, 32)):
        p, q = tiny_policy(tok, seed, n_embd).eval(), tiny_policy(tok, seed + 10, n_embd).eval()
        prompts = ["tell me about tools:", "tell me about animals:", "hi:"]
        comps = sample(p, tok, prompts, n=2, max_new_tokens=5, seed=seed)
        flat_p = [x for x, cs in zip(prompts, comps) for _ in cs]
        flat_c = [c for cs in comps for c in cs]
        fast = sequence_logprobs(p, tok, flat_p, flat_c)
        for i, (x, c) in enumerate(zip(flat_p, flat_c)):  # one unpadded sequence at a time
            ids = torch.tensor([tok(x)["input_ids"] + c])
            with torch.no_grad():
                logp = torch.log_softmax(p(input_ids=ids).logits[0, :-1].double(), -1)
            k = ids.shape[1] - len(c)
            ref = sum(float(logp[k - 1 + j, t]) for j, t in enumerate(c))
            assert abs(float(fast[i]) - ref) < 1e-4
        assert torch.equal(sequence_logprobs(q, tok, flat_p, flat_c), sequence_logprobs(q, tok, flat_p, flat_c))
