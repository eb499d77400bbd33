"""The tasks end to end on tiny sizes: sft -> align -> evaluate, resume, reward-model judge, conformance."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_policy

from paperloom import UserError
from paperloom.run import execute
from paperloom.testing import assert_conforms

TINY = ["policy_args={n_layer: 1, n_embd: 32, n_head: 2, n_positions: 64}", "vocab_size=300", "data_args={n: 32}",
        "train.batch_size=4", "train.max_length=48", "train.log_steps=1"]


def test_conforms():
    assert_conforms("tr-dpo")


def test_every_shipped_config_validates():
    from paperloom_tr_dpo import plugin

    from paperloom.config import build, load_yaml
    from paperloom.run import load_ref

    root = plugin.__file__.rsplit("/", 1)[0] + "/configs/"
    schemas = {t.config: load_ref(t.schema) for t in plugin.paperloom_tasks()}
    align = schemas["configs/align.yaml"]
    schemas.update({"configs/paper.yaml": align, "configs/tiny.yaml": align})
    for rel, schema in schemas.items():
        build(schema, load_yaml(root + rel.split("/")[-1]), rel)
    paper = build(schemas["configs/paper.yaml"], load_yaml(root + "paper.yaml"))
    assert (paper.beta, paper.ref.alpha, paper.ref.tau, paper.train.lr) == (0.05, 0.6, 512, 1e-6)


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
    common = TINY + [f"policy={policy}", "train.lr=0.005", "ref.update=soft", "ref.alpha=0.5", "train.save_steps=2"]
    whole, _ = execute("tr-dpo:align", overrides=common + ["train.steps=4"], out=tmp_path / "whole", device="cpu",
                       plot=False)
    part, _ = execute("tr-dpo:align", overrides=common + ["train.steps=2"], out=tmp_path / "part", device="cpu",
                      plot=False)
    assert (part / "trainer" / "checkpoint-2" / "ref_model.safetensors").is_file()
    part, m = execute("tr-dpo:align", overrides=["train.steps=4"], out=part, resume=True, device="cpu", plot=False)
    assert m["steps"] == 4
    from safetensors.torch import load_file

    for name in ("model/model.safetensors", "trainer/checkpoint-4/ref_model.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(part / name))
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


def test_reward_model_judge(tok, tmp_path):
    from paperloom_tr_dpo.evaluate import build_win_rate, reward_model_judge
    from transformers import GPT2Config, GPT2ForSequenceClassification

    rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_layer=1, n_embd=16, n_head=2, num_labels=1,
                                                  pad_token_id=tok.pad_token_id))
    rm.save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    score = reward_model_judge(str(tmp_path / "rm"))
    r = score(["tell me about tools:"] * 3, [" saw", " saw drill hoe", " cat"])
    assert len(r) == 3 and all(isinstance(x, float) for x in r)
    evaluate = build_win_rate(judge=str(tmp_path / "rm"), baseline=tiny_policy(tok, 1), tokenizer=tok, samples=2,
                              max_new_tokens=6, prompts=3)
    m = evaluate(tiny_policy(tok, 2), ["tell me about tools:", "tell me about fruits:", "tell me about colors:"])
    assert 0.0 <= m["win_rate"] <= 1.0
    with pytest.raises(UserError, match="sequence-classification"):
        reward_model_judge(str(tmp_path / "nowhere"))


def test_kl_estimator_matches_a_plain_per_sequence_computation(tok):
    from paperloom_tr_dpo.evaluate import sample, sequence_logprobs

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


def test_composes_with_another_causal_lm_component(tok, pairs, tmp_path):
    """The trainer takes any causal LM by name: here core:llama (a different architecture than GPT-2)."""
    from conftest import tiny_train
    from paperloom_tr_dpo.trainer import align_trainer

    from paperloom.plugins import registry
    from paperloom.run import build_component

    torch.manual_seed(0)
    model = build_component(registry(), "core:llama", vocab_size=len(tok), num_hidden_layers=1, hidden_size=32,
                            num_attention_heads=2)
    trainer = align_trainer(model, tok, pairs, update="hard", tau=2, train=tiny_train(2), out_dir=tmp_path,
                            save_strategy="no")
    trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), trainer.ref_model.parameters()))


def test_aligns_a_megalodon_policy_across_plugins(tok, pairs, tmp_path):
    pytest.importorskip("paperloom_megalodon")
    from conftest import tiny_train
    from paperloom_tr_dpo.trainer import align_trainer

    from paperloom.plugins import registry
    from paperloom.run import build_component

    torch.manual_seed(0)
    model = build_component(registry(), "megalodon:tiny", vocab_size=len(tok))
    trainer = align_trainer(model, tok, pairs, update="hard", tau=2, train=tiny_train(2), out_dir=tmp_path,
                            save_strategy="no")
    trainer.train()  # trl reads base_model(...).last_hidden_state: megalodon's backbone returns a ModelOutput
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), trainer.ref_model.parameters()))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(x == x for x in losses)


DDP_SCRIPT = '''
import json, os, sys
import torch
torch.set_num_threads(1)
from datasets import Dataset
from paperloom.lm import train_tokenizer
from paperloom.lm_components import build_gpt2
from paperloom_tr_dpo import synthetic
from paperloom_tr_dpo.config import TrainArgs
from paperloom_tr_dpo.trainer import align_trainer, train

out = sys.argv[1]
tok = train_tokenizer(synthetic.corpus(300), 300)
torch.manual_seed(0)
model = build_gpt2(vocab_size=len(tok), n_layer=1, n_embd=32, n_head=2, n_positions=64)
t = align_trainer(model, tok, Dataset.from_list(synthetic.synthetic_pairs(32, seed=3)), update="hard", tau=2,
                  train=TrainArgs(steps=2, batch_size=2, lr=5e-3, max_length=48, save_steps=2, log_steps=1),
                  out_dir=out + "/trainer")
m = train(t)
policy = t.accelerator.unwrap_model(t.model)
same = all(torch.equal(a, b) for a, b in zip(policy.parameters(), t.ref_model.parameters()))
if t.is_world_process_zero():
    json.dump({"world": t.args.world_size, "synced": same, **m}, open(out + "/result.json", "w"))
'''


def test_scales_out_to_two_cpu_processes(tmp_path):
    """trl/accelerate data parallel (gloo, 2 CPU processes): the sync runs in each process, ref == theta after it."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                           str(tmp_path / "ddp.py"), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world"] == 2 and result["synced"] and result["steps"] == 2
    assert (tmp_path / "trainer" / "checkpoint-2" / "ref_model.safetensors").is_file()


def test_trainer_component_fits_any_policy(tok, pairs, tmp_path):
    """`tr-dpo:trainer` built by name: fit(model, data, ctx=..., tokenizer=...) -> metrics, logged to the run."""
    from types import SimpleNamespace

    from paperloom.plugins import registry
    from paperloom.run import build_component

    rows = []
    ctx = SimpleNamespace(out=tmp_path, device="cpu", seed=0, resume=False,
                          log_metrics=lambda m, step=None: rows.append((step, dict(m))))
    fit = build_component(registry(), "tr-dpo:trainer", loss="ipo", update="general", alpha=0.5, tau=2, steps=2,
                          batch_size=4, lr=5e-3, max_length=48, log_steps=1, save_steps=2)
    m = fit(tiny_policy(tok), pairs, ctx=ctx, tokenizer=tok)
    assert m["steps"] == 2 and rows and (tmp_path / "trainer" / "checkpoint-2" / "ref_model.safetensors").is_file()
    with pytest.raises(UserError, match="tokenizer"):
        fit(tiny_policy(tok), pairs, ctx=ctx)
