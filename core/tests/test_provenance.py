"""run.json provenance, run folders as typed inputs, `core runs`, and map-style jobs (ctx.map)."""

import json
import os
import random
import subprocess
import sys

import pytest
from conftest import run_cli

from paperloom import UserError
from paperloom.executor import MapError, imap_items, map_items
from paperloom.runner import execute, resolve_task_config
from paperloom.testing import registry_with

ENV = {"PAPERLOOM_DISABLE_PLUGINS": "1"}


@pytest.fixture(scope="module")
def finished_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "fit"
    execute("core:fit", smoke=True, out=out, reg=registry_with(), device="cpu")
    return out


def test_run_json_records_what_the_run_was(finished_fit):
    m = json.loads((finished_fit / "run.json").read_text())
    assert (m["plugin"], m["task"], m["status"], m["seed"]) == ("core", "fit", "finished", 0)
    assert {"paperloom-core", "python", "torch", "lightning"} <= set(m["versions"])
    import hashlib

    assert m["config_sha256"] == hashlib.sha256((finished_fit / "config.yaml").read_bytes()).hexdigest()
    art = m["artifacts"]["model.safetensors"]
    assert art["contract"] == "regressor-weights"
    assert art["sha256"] == hashlib.sha256((finished_fit / "model.safetensors").read_bytes()).hexdigest()
    assert m["started"] <= m["ended"]


def test_a_run_folder_is_a_typed_input(finished_fit, tmp_path):
    reg = registry_with()
    _, m = execute("core:fit", smoke=True, out=tmp_path / "next", reg=reg, device="cpu",
                   overrides=[f"init_from={finished_fit}"])
    fresh = json.loads((tmp_path / "next" / "run.json").read_text())
    assert fresh["inputs"]["init_from"]["run"] == str(finished_fit.resolve())
    first = json.loads((finished_fit / "metrics.json").read_text())
    assert m["init_val_loss"] == pytest.approx(first["val_loss"], rel=1e-6)  # it started from those weights


def test_bad_run_inputs_fail_before_anything_runs(finished_fit, tmp_path):
    reg = registry_with()

    def fails(value, fragment):
        with pytest.raises(UserError, match=fragment):
            resolve_task_config(reg, "core:fit", overrides=[f"init_from={value}"])

    fails(tmp_path, "no run folder there")
    import shutil

    bad = tmp_path / "copy"
    shutil.copytree(finished_fit, bad)
    m = json.loads((bad / "run.json").read_text())
    (bad / "run.json").write_text(json.dumps({**m, "artifacts": {}}))
    fails(bad, r"core:fit produced none, but 'regressor-weights' is needed here")
    (bad / "run.json").write_text(json.dumps({**m, "status": "failed"}))
    fails(bad, "that run is failed, not finished")
    (bad / "run.json").write_text(json.dumps({**m, "status": "running", "pid": 2**22 + 12345}))
    fails(bad, "that run is killed, not finished")  # a dead 'running' run reads as killed
    (bad / "run.json").write_text(json.dumps(m))
    (bad / "model.safetensors").write_bytes(b"tampered")
    fails(bad, "model.safetensors changed since the run wrote it")


def test_core_runs_lists_status_task_metrics_and_inputs(finished_fit, tmp_path):
    execute("core:fit", smoke=True, out=finished_fit.parent / "next", reg=registry_with(), device="cpu",
            overrides=[f"init_from={finished_fit}"])
    res = run_cli("runs", str(finished_fit.parent), env=ENV)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(str(finished_fit) + " "))
    assert "core:fit" in line and "finished" in line and "val_loss=" in line
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(str(finished_fit.parent / "next")))
    assert "init_from=fit (core:fit, regressor-weights)" in line  # the field, the run, its task and contract
    assert run_cli("runs", str(tmp_path / "nope"), env=ENV).returncode == 2


def _noisy_square(x):
    return x * x + random.random()  # per-item seeds make this reproducible across worker counts


def _fails_on_three(x):
    if x == 3:
        raise ValueError("three is bad")
    return x


def test_map_is_ordered_and_independent_of_the_worker_count():
    one = map_items(_noisy_square, range(20), workers=1, seed=5)
    two = map_items(_noisy_square, range(20), workers=2, seed=5, chunksize=3)
    assert one == two and [int(v) for v in one] == [x * x for x in range(20)]
    assert map_items(_noisy_square, range(20), workers=1, seed=6) != one


def test_a_failing_item_is_named_and_finished_results_are_kept():
    with pytest.raises(MapError, match=r"1 of 6 items failed \(item 'd': ValueError: three is bad\)") as exc:
        map_items(_fails_on_three, range(6), workers=2, ids=list("abcdef"))
    assert exc.value.results == [0, 1, 2, None, 4, 5] and exc.value.failures == {"d": "ValueError: three is bad"}


def _lazy(n):
    yield from range(n)


def test_imap_streams_in_order_with_a_bounded_window():
    """A lazy stream, 2 workers, at most 2 chunks in flight: the same values, in order, as map_items."""
    want = map_items(_noisy_square, range(40), workers=1, seed=5)
    got = imap_items(_noisy_square, _lazy(40), workers=2, seed=5, chunksize=3, window=2)
    assert not isinstance(got, list) and list(got) == want
    assert list(imap_items(_noisy_square, _lazy(40), workers=1, seed=5, chunksize=7)) == want
    with pytest.raises(MapError, match=r"1 of 6 items failed \(item 3: ValueError: three is bad\)"):
        list(imap_items(_fails_on_three, _lazy(6), workers=2, chunksize=1, window=2))


def test_a_killed_run_reads_as_killed(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "paperloom", "run", "core:fit", "--device", "cpu", "--out",
                             str(out), "--set", "trainer.max_steps=100000", "trainer.val_every=100000"],
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time

    deadline = time.time() + 120
    while not (out / "run.json").is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    from paperloom.provenance import read_manifest

    assert read_manifest(out)["status"] == "killed"


def test_a_local_ray_cluster_gives_the_local_results(request):
    """map_items / imap_items over a local Ray cluster (2 CPUs): the same ordered, seeded values as 1 local
    worker, and a failing item named with the finished ones kept. Ray listens on every interface, so the test
    runs in a loopback-only network namespace."""
    pytest.importorskip("ray", reason="the Ray executor needs paperloom-core[ray]")
    from paperloom.testing import run_in_loopback_namespace

    if not run_in_loopback_namespace(request.node.nodeid, request.config.rootpath):
        return

    def noisy_square(x):  # defined here: Ray ships it by value (cloudpickle), no importable module needed
        import random

        return x * x + random.random()

    def fails_on_three(x):
        if x == 3:
            raise ValueError("three is bad")
        return x

    want = map_items(noisy_square, range(30), workers=1, seed=5)
    assert map_items(noisy_square, range(30), workers=2, seed=5, chunksize=4, backend="ray") == want
    assert list(imap_items(noisy_square, _lazy(30), workers=2, seed=5, chunksize=3, window=2, backend="ray")) == want
    with pytest.raises(MapError, match=r"1 of 6 items failed \(item 'd': ValueError: three is bad\)") as exc:
        map_items(fails_on_three, range(6), workers=2, ids=list("abcdef"), backend="ray")
    assert exc.value.results == [0, 1, 2, None, 4, 5]


def test_forked_workers_of_a_multithreaded_torch_process_do_not_hang(tmp_path):
    """After the parent ran torch on 2 threads, forked map workers running torch ops finish (GNU OpenMP is not
    fork-safe: each worker is set to one torch thread first)."""
    script = tmp_path / "m.py"
    script.write_text(
        "import torch\n"
        "from paperloom.executor import map_items\n"
        "torch.set_num_threads(2)\n"
        "a = torch.randn(512, 512)\n"
        "for _ in range(3):\n"
        "    a = (a @ a).tanh()  # the parent's OpenMP pool is running\n"
        "def work(i):\n"
        "    x = torch.randn(256, 256)\n"
        "    return float((x @ x).sum() * 0 + i)\n"
        "print(map_items(work, range(6), workers=2))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]"
