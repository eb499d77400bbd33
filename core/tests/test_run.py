"""Run folders: what a run writes, resume after SIGKILL, DDP on two CPU processes."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
import yaml
from conftest import run_cli

from paperloom.io import read_jsonl
from paperloom.runner import execute
from paperloom.testing import registry_with

ENV = {"PAPERLOOM_DISABLE_PLUGINS": "1"}


def test_run_folder_contents(tmp_path):
    out, metrics = execute(
        "core:demo",
        smoke=True,
        out=tmp_path / "r",
        reg=registry_with(),
        device="cpu",
        overrides=["trainer.log_every=1"],
    )
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "metrics.json",
        "run.log",
        "checkpoints/last.ckpt",
        "curves.png",
        "model.safetensors",
        "logs/version_0/metrics.csv",
    ):
        assert (out / name).is_file(), name
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 4 and saved["trainer"]["log_every"] == 1  # smoke + override, resolved
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows if "train_loss" in r] == [1, 2, 3, 4]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert not list(out.rglob("*.tmp")) and not (out / ".lock").exists()  # no temp files, lock released


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "r"
    args = [
        "run",
        "core:fit",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--set",
        "trainer.max_steps=1500",
        "trainer.checkpoint_every=10",
        "trainer.val_every=1000",
        "trainer.batch_size=32",
        "data.n=2000",
        "model_args={hidden: 32, layers: 2}",
    ]  # small steps: the resumed run has ~1500 of them left (minutes on a loaded machine with the old sizes)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperloom", *args],
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.1)  # let a later checkpoint start: the kill may land mid-write
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = torch.load(ckpt, weights_only=True)["global_step"]
    assert 0 < killed_at < 1500
    assert not (out / "metrics.json").exists() or "steps" not in json.loads((out / "metrics.json").read_text())
    read_jsonl(out / "metrics.jsonl")  # still readable after the kill

    res = run_cli("run", "core:fit", "--resume", "--device", "cpu", "--out", str(out), env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 1500
    log = (out / "run.log").read_text()
    assert "resuming from" in log and "last.ckpt" in log


def test_ddp_on_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    res = run_cli(
        "run",
        "core:fit",
        "--smoke",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--set",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        env=ENV,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["val_loss"] < metrics["init_val_loss"]
    assert not (tmp_path / "runs").exists()  # the second rank used the same run folder


def test_torchrun_launch_shares_one_run_folder(tmp_path):
    """Processes started by torchrun (not Lightning) find rank 0's folder through --out and wait for its config."""
    out = tmp_path / "tr"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "paperloom",
        "run",
        "core:fit",
        "--smoke",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--set",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV}, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tr"]


def test_threads_option_caps_torch_threads(tmp_path):
    """`--threads 1` reaches torch before the task runs (the task reports what torch uses)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakeplug_threads.py").write_text(
        "from dataclasses import dataclass\n"
        "from paperloom import PluginInfo, Task, hookimpl\n"
        "@dataclass\nclass Cfg:\n    pass\n"
        "def run(cfg, ctx):\n    import torch\n    return {'threads': torch.get_num_threads()}\n"
        "@hookimpl\ndef paperloom_plugin():\n    return PluginInfo(summary='threads')\n"
        "@hookimpl\ndef paperloom_tasks():\n    return [Task('demo', 'fakeplug_threads:run', 'fakeplug_threads:Cfg')]\n"
    )
    from conftest import make_dist

    make_dist(
        site, "fakeplug-threads", "1.0", "threads", "fakeplug_threads_decl", "from fakeplug_threads import *  # noqa\n"
    )
    env = {"PYTHONPATH": str(site), "OMP_NUM_THREADS": "2"}
    res = run_cli("run", "threads:demo", "--threads", "1", "--out", str(tmp_path / "r"), env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["threads"] == 1.0


def test_logs_of_every_start_are_kept(tmp_path):
    out = tmp_path / "r"
    execute("core:fit", smoke=True, out=out, reg=registry_with(), device="cpu")
    execute("core:fit", resume=True, out=out, reg=registry_with(), device="cpu", overrides=["trainer.max_steps=6"])
    assert (out / "logs" / "version_0" / "metrics.csv").is_file() and (out / "logs" / "version_1").is_dir()


def test_a_second_run_into_a_busy_folder_is_refused_and_a_stale_lock_is_not(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(str(sleeper.pid))
        res = run_cli("run", "core:fit", "--smoke", "--out", str(out), env=ENV)
        assert res.returncode == 2 and f"is in use by another run (pid {sleeper.pid})" in res.stderr
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    finally:
        sleeper.kill()
        sleeper.wait()
    res = run_cli("run", "core:fit", "--smoke", "--device", "cpu", "--out", str(out), env=ENV)  # its holder is dead
    assert res.returncode == 0, res.stderr[-2000:]
    assert not (out / ".lock").exists()


FAILS_LATE = """
from dataclasses import dataclass
from paperloom import PluginInfo, Task, UserError, hookimpl

@dataclass
class Cfg:
    pass

def run(cfg, ctx):
    (ctx.out / "tokenizer").mkdir()
    raise UserError("data.source: no rows")

@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="fails on its data")

@hookimpl
def paperloom_tasks():
    return [Task("demo", "fakeplug_late:run", "fakeplug_late:Cfg")]
"""


def test_bad_input_found_by_the_task_leaves_no_half_made_folder(tmp_path, monkeypatch):
    from paperloom import UserError

    (tmp_path / "fakeplug_late.py").write_text(FAILS_LATE)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = registry_with(("late", "fakeplug_late"))
    out = tmp_path / "r"
    try:
        execute("late:demo", out=out, reg=reg)
    except UserError as exc:
        assert "no rows" in str(exc)
    assert not out.exists()  # --out can be reused at once


def test_console_is_quiet_and_run_log_keeps_the_chatter(tmp_path):
    out = tmp_path / "r"
    res = run_cli("run", "core:fit", "--smoke", "--device", "cpu", "--out", str(out), env=ENV)
    assert res.returncode == 0, res.stderr
    for chatter in ("litlogger", "GPU available", "TPU available", "Warning"):
        assert chatter not in res.stderr
    assert "GPU available" in (out / "run.log").read_text()


def test_step_progress_counts_steps_toward_max_steps():
    from paperloom.training import StepProgress

    assert StepProgress.text(3, 400, 1.23456) == "step 3/400  train_loss 1.2346"
    assert StepProgress.text(0, 10, None) == "step 0/10"


def test_resume_from_a_torn_or_pickled_checkpoint_is_a_one_line_error(tmp_path):
    out = tmp_path / "r"
    res = run_cli("run", "core:fit", "--smoke", "--device", "cpu", "--out", str(out), env=ENV)
    assert res.returncode == 0, res.stderr
    ckpt = out / "checkpoints" / "last.ckpt"
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    res = run_cli("run", "core:fit", "--resume", "--device", "cpu", "--out", str(out), env=ENV)
    assert res.returncode == 2 and "last.ckpt: not a readable checkpoint" in res.stderr, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]  # after the run's own "resuming ..." lines
    assert last.startswith("error: ") and "last.ckpt" in last and "Traceback" not in res.stderr
    import argparse

    torch.save({"state": argparse.Namespace(code=1)}, ckpt)  # not weights-only loadable
    res = run_cli("run", "core:fit", "--resume", "--device", "cpu", "--out", str(out), env=ENV)
    assert res.returncode == 2 and "pickled Python objects, which are never loaded" in res.stderr, res.stderr[-2000:]
    assert "weights_only=False" not in res.stderr
    assert (out / "metrics.json").is_file()  # nothing already written was lost


def test_a_resumed_run_sees_the_batches_an_uninterrupted_one_would(tmp_path):
    """Stop mid-epoch at step 5 and resume to 12: every logged train loss equals the uninterrupted run's."""
    common = ["data.n=256", "trainer.batch_size=32", "trainer.log_every=1", "trainer.checkpoint_every=5",
              "trainer.val_every=100", "optim.warmup_steps=0", "optim.min_lr=0.003", "optim.lr=0.003"]
    reg = registry_with()
    whole, _ = execute("core:fit", out=tmp_path / "whole", reg=reg, device="cpu",
                       overrides=[*common, "trainer.max_steps=12"])

    def losses(out):
        return {r["step"]: r["train_loss"] for r in read_jsonl(out / "metrics.jsonl") if "train_loss" in r}

    a = losses(whole)
    assert sorted(a) == list(range(1, 13))
    for stop in (5, 8):  # 8 batches an epoch: mid-epoch 0, and exactly at its end
        part, _ = execute("core:fit", out=tmp_path / f"part{stop}", reg=reg, device="cpu",
                          overrides=[*common, f"trainer.max_steps={stop}"])
        execute("core:fit", out=part, resume=True, reg=reg, device="cpu", overrides=["trainer.max_steps=12"])
        b = losses(part)
        assert set(a) == set(b)
        for step in a:
            assert abs(a[step] - b[step]) < 1e-6, (stop, step, a[step], b[step])


def test_resumable_sampler_orders_batches_as_a_seeded_shuffling_dataloader():
    from torch.utils.data import DataLoader

    from paperloom.training import ResumableSampler

    data = list(range(50))
    plain = DataLoader(data, batch_size=1, shuffle=True, generator=torch.Generator().manual_seed(3))
    sampler = ResumableSampler(50, 3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert [int(b) for b in plain] == list(sampler)
    sampler.set_epoch(1)
    sampler.skip = 7
    full = ResumableSampler(50, 3)
    full.set_epoch(1)
    assert list(sampler) == list(full)[7:]


def test_two_ddp_processes_train_exactly_like_one_on_the_same_global_batch(tmp_path):
    """Rank r takes its slice of every global batch: 2 x 32 gives the 1 x 64 run's losses."""
    base = ["--device", "cpu", "--set", "data.n=512", "trainer.max_steps=6", "trainer.val_every=100",
            "trainer.accelerator=cpu"]
    one = run_cli("run", "core:fit", "--out", str(tmp_path / "one"), *base, "trainer.batch_size=64", env=ENV,
                  cwd=tmp_path)
    two = run_cli("run", "core:fit", "--out", str(tmp_path / "two"), *base, "trainer.batch_size=32",
                  "trainer.devices=2", "trainer.strategy=ddp", env=ENV, cwd=tmp_path)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert a["init_val_loss"] == b["init_val_loss"]
    assert abs(a["val_loss"] - b["val_loss"]) < 1e-6, (a["val_loss"], b["val_loss"])
