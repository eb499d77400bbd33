"""The tasks end to end on tiny sizes: sft -> align -> evaluate, and an align run killed and resumed."""

from __future__ import annotations

import json

import pytest
import torch

from paperloom.runner import execute

TINY = ["policy_args={n_layer: 1, n_embd: 32, n_head: 2, n_positions: 48}", "vocab_size=300", "data_args={n: 32}",
        "train.batch_size=4", "train.max_length=48", "train.log_steps=1"]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sft"
    execute("tr-dpo:sft", overrides=TINY + ["train.steps=4", "train.lr=0.005"], out=out, device="cpu", plot=False)
    return out


def test_sft_align_evaluate(sft_run, tmp_path):
    assert (sft_run / "model" / "config.json").is_file() and (sft_run / "model" / "tokenizer.json").is_file()
    policy = str(sft_run / "model")
    out, m = execute("tr-dpo:align", overrides=TINY + [f"policy={policy}", "train.steps=4", "train.lr=0.005",
                                                       "ref.update=hard", "ref.tau=2"], out=tmp_path / "al",
                     device="cpu", plot=False)
    assert m["steps"] == 4 and (out / "model" / "config.json").is_file()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards_margins" in r for r in rows)
    out, m = execute("tr-dpo:evaluate", overrides=[f"policy={out / 'model'}", f"baseline={policy}", "prompts=6",
                                                   "samples=2", "max_new_tokens=8"], out=tmp_path / "ev", device="cpu",
                     plot=False)
    assert 0.0 <= m["win_rate"] <= 1.0 and m["kl"] == m["kl"] and "baseline_reward" in m


def test_align_resumes_with_its_moved_reference(sft_run, tmp_path):
    """A TR run killed after step 2 and resumed ends where an uninterrupted run ends (policy and reference)."""
    policy = str(sft_run / "model")
    common = TINY + [f"policy={policy}", "train.lr=0.005", "ref.update=ema", "ref.alpha=0.5", "train.save_steps=2"]
    whole, _ = execute("tr-dpo:align", overrides=common + ["train.steps=4"], out=tmp_path / "whole", device="cpu",
                       plot=False)
    part, _ = execute("tr-dpo:align", overrides=common + ["train.steps=2"], out=tmp_path / "part", device="cpu",
                      plot=False)
    assert (part / "checkpoints" / "checkpoint-2" / "ref_model.safetensors").is_file()
    part, m = execute("tr-dpo:align", overrides=["train.steps=4"], out=part, resume=True, device="cpu", plot=False)
    assert m["steps"] == 4
    from safetensors.torch import load_file

    for name in ("model/model.safetensors", "checkpoints/checkpoint-4/ref_model.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(part / name))
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


def test_a_partial_reference_file_is_refused_on_resume(sft_run, tmp_path):
    """The reference reload is strict: a file missing tensors is a one-line error, not a silent partial load."""
    from safetensors.torch import load_file, save_file

    from paperloom import UserError

    policy = str(sft_run / "model")
    common = TINY + [f"policy={policy}", "ref.update=hard", "ref.tau=1", "train.save_steps=2"]
    part, _ = execute("tr-dpo:align", overrides=common + ["train.steps=2"], out=tmp_path / "part", device="cpu",
                      plot=False)
    ref = part / "checkpoints" / "checkpoint-2" / "ref_model.safetensors"
    state = load_file(str(ref))
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped}, str(ref))
    with pytest.raises(UserError, match=rf"ref_model.safetensors: the saved reference does not fit .*{dropped}"):
        execute("tr-dpo:align", overrides=["train.steps=4"], out=part, resume=True, device="cpu", plot=False)
