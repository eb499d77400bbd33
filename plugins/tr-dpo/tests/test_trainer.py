"""The trl wiring: refusals where trl's update does not apply, any causal LM as the policy, data parallel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from conftest import run_ctx, tiny_policy, tiny_train
from paperloom_tr_dpo.trainer import align_trainer

from paperloom import UserError


def test_unpaired_data_needs_kto_and_a_moving_reference_is_computed_online(tok, tmp_path):
    from datasets import Dataset

    ds = Dataset.from_list([{"prompt": "tell me about tools:", "completion": " saw", "label": True}] * 4)
    with pytest.raises(UserError, match="needs preference pairs"):
        align_trainer(tiny_policy(tok), tok, ds, loss="dpo", train=tiny_train(1), out_dir=tmp_path)
    with pytest.raises(UserError, match="precompute_ref_log_probs"):
        align_trainer(tiny_policy(tok), tok, ds, loss="kto", update="soft", precompute_ref_log_probs=True,
                      train=tiny_train(1), out_dir=tmp_path)


def _hard_sync_run(model, tok, pairs, tmp_path):
    trainer = align_trainer(model, tok, pairs, update="hard", tau=2, train=tiny_train(2), out_dir=tmp_path,
                            save_strategy="no")
    trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), trainer.ref_model.parameters()))
    return trainer


def test_composes_with_another_causal_lm_component(tok, pairs, tmp_path):
    """Any causal LM by name: here lm:llama (a different architecture than GPT-2)."""
    torch.manual_seed(0)
    model = run_ctx(tmp_path).build("lm:llama", vocab_size=len(tok), num_hidden_layers=1, hidden_size=32,
                                    num_attention_heads=2)
    _hard_sync_run(model, tok, pairs, tmp_path)


@pytest.mark.cross_plugin
def test_aligns_a_megalodon_policy_across_plugins(tok, pairs, tmp_path):
    pytest.importorskip("paperloom_megalodon")
    torch.manual_seed(0)
    model = run_ctx(tmp_path).build("megalodon:tiny", vocab_size=len(tok))
    # trl's fused LM head reads base_model(...).last_hidden_state: megalodon's backbone returns a ModelOutput
    trainer = _hard_sync_run(model, tok, pairs, tmp_path)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(x == x for x in losses)


DDP_SCRIPT = '''
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from datasets import Dataset
from paperloom.context import Run
from paperloom_lm.data import train_tokenizer
from paperloom_lm.hf import train
from paperloom_tr_dpo import synthetic
from paperloom_tr_dpo.config import TrainArgs
from paperloom_tr_dpo.trainer import align_trainer

out, batch = sys.argv[1], int(sys.argv[2])
tok = train_tokenizer(synthetic.corpus(300), 300)
torch.manual_seed(0)
model = Run(out=Path(out), plugin="tr-dpo", task="ddp").build("lm:gpt2", vocab_size=len(tok), n_layer=1, n_embd=32,
                                                                n_head=2, n_positions=64)
t = align_trainer(model, tok, Dataset.from_list(synthetic.synthetic_pairs(32, seed=3)), update="hard", tau=2,
                  train=TrainArgs(steps=2, batch_size=batch, lr=5e-3, max_length=48, save_steps=2, log_steps=1),
                  out_dir=out + "/trainer")
m = train(t)
policy = t.accelerator.unwrap_model(t.model)
same = all(torch.equal(a, b) for a, b in zip(policy.parameters(), t.ref_model.parameters()))
if t.is_world_process_zero():
    from safetensors.torch import save_file
    save_file({k: v.detach().clone() for k, v in policy.named_parameters()}, out + "/policy.safetensors")
    json.dump({"world": t.args.world_size, "synced": same, **m}, open(out + "/result.json", "w"))
# every rank waits for rank 0's files, then the group closes together: a rank that exits first tears gloo down
# under rank 0 (SIGABRT, "terminate called without an active exception", seen in CI), as core's runner does
import torch.distributed as dist
if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()
'''


def test_scales_out_to_two_cpu_processes(tmp_path):
    """trl/accelerate data parallel (gloo, 2 CPU processes x 2 pairs): the sync runs in each process, ref == theta
    after it, and the policy equals one process trained on the same pairs 4 at a time (accelerate gives rank r
    the r-th of each pair of per-device batches of one shuffled order; DDP averages the two batch means)."""
    from safetensors.torch import load_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    two, one = tmp_path / "two", tmp_path / "one"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                           str(tmp_path / "ddp.py"), str(two), "2"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((two / "result.json").read_text())
    assert result["world"] == 2 and result["synced"] and result["steps"] == 2
    assert (two / "trainer" / "checkpoint-2" / "ref_model.safetensors").is_file()
    proc = subprocess.run([sys.executable, str(tmp_path / "ddp.py"), str(one), "4"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((one / "result.json").read_text())["world"] == 1
    a, b = load_file(two / "policy.safetensors"), load_file(one / "policy.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    start = load_file(two / "trainer" / "checkpoint-2" / "ref_model.safetensors")  # hard sync at step 2: = theta
    shared = start.keys() & a.keys()
    assert shared and all(torch.equal(start[k], a[k]) for k in shared)
