"""The `core` command: fast listing with no torch, one-line errors with exit code 2."""

import subprocess
import sys

import pytest
from conftest import run_cli

NO_PLUGINS = {"PAPERLOOM_DISABLE_PLUGINS": "1"}


def test_list_and_info_do_not_import_torch():
    code = (
        "import sys; from paperloom.cli import main; main(['list']); main(['info', 'core']); "
        "main(['info', 'core:demo']); main(['list', '--json']); "
        "heavy = [m for m in ('torch', 'lightning', 'transformers') if m in sys.modules]; print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "core:fit" in out and "trainer.max_steps" in out and "presets (--config NAME): tiny" not in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "nosuch:demo"], "unknown plugin 'nosuch'"),
        (["run", "core:dmeo"], "plugin 'core' has no task 'dmeo' (did you mean demo?)"),
        (["run", "core"], "must be written plugin:task"),
        (["run", "core:demo", "--set", "novalue"], "must look like key=value"),
        (
            ["run", "core:demo", "--set", "trainer.max_stepz=3"],
            "unknown option trainer.max_stepz (did you mean max_steps?)",
        ),
        (
            ["run", "core:demo", "--set", "trainer.max_steps=many"],
            "trainer.max_steps = 'many' is not valid; expected an integer",
        ),
        (["run", "core:demo", "--config", "/nonexistent/x.yaml"], "config file /nonexistent/x.yaml does not exist"),
        (["run", "core:demo", "--set", "model=core:regression"], "core:regression is a dataset, but a model is needed"),
        (
            ["run", "core:fit", "--config", "tinny"],
            "--config 'tinny' is neither a file nor a preset of core:fit (did you",
        ),
        (["run", "core:demo", "--set", "evaluator=core:mlp"], "core:mlp is a model, but a evaluator is needed here"),
        (["run", "core:demo", "--set", "model=./no/such/folder"], "no checkpoint folder with config.json there"),
        (["run", "core:demo", "--set", "model=/"], "no checkpoint folder with config.json there"),
        (["run", "core:demo", "--resume"], "--resume needs --out DIR"),
        (["run", "core:fit", "--resume", "--config", "tiny", "--out", "x"], "drop --config tiny"),
        (
            ["run", "core:fit", "--set", "trainer.max_steps=-5"],
            "trainer.max_steps = -5 is out of range; expected a value >= 1",
        ),
        (["run", "core:fit", "--set", "trainer.batch_size=0"], "trainer.batch_size = 0 is out of range"),
        (["run", "core:fit", "--set", "optim.lr=-1"], "optim.lr = -1.0 is out of range; expected a value >= 0"),
        (
            ["run", "core:fit", "--set", "trainer.precision=banana"],
            "trainer.precision = 'banana' is not valid; expected",
        ),
        (["run", "core:fit", "--set", "trainer.devices=0"], "trainer.devices = 0 is out of range"),
        (["new", "core"], "plugin name 'core' is reserved"),
        (["info", "nosuch"], "unknown plugin 'nosuch'"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(args, fragment, tmp_path):
    res = run_cli(*args, env=NO_PLUGINS, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert fragment in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_debug_shows_the_traceback(tmp_path):
    for args in (["--debug", "run", "nosuch:demo"], ["run", "nosuch:demo", "--debug"]):
        res = run_cli(*args, env=NO_PLUGINS, cwd=tmp_path)
        assert res.returncode != 0 and "Traceback" in res.stderr, args


def test_existing_run_folder_is_not_overwritten(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "metrics.json").write_text('{"keep": 1}')
    res = run_cli("run", "core:demo", "--out", str(out), env=NO_PLUGINS)
    assert res.returncode == 2 and "already holds files" in res.stderr
    assert (out / "metrics.json").read_text() == '{"keep": 1}'


def test_verify_from_an_existing_run(tmp_path):
    (tmp_path / "metrics.json").write_text('{"val_loss": 2.0, "init_val_loss": 5.0}')
    res = run_cli("verify", "core:demo", "--from", str(tmp_path), env=NO_PLUGINS)
    assert res.returncode == 0 and "PASS  val_loss = 2 < init_val_loss = 5" in res.stdout
    (tmp_path / "metrics.json").write_text('{"val_loss": 6.0, "init_val_loss": 5.0}')
    res = run_cli("verify", "core:demo", "--from", str(tmp_path), env=NO_PLUGINS)
    assert res.returncode == 1 and "FAIL" in res.stdout
    (tmp_path / "metrics.json").write_text('{"val_loss": ')
    res = run_cli("verify", "core:demo", "--from", str(tmp_path), env=NO_PLUGINS)
    assert res.returncode == 2 and "is not valid JSON (line 1" in res.stderr


def test_doctor_reports_requirements():
    res = run_cli("doctor", "core", env=NO_PLUGINS)
    assert res.returncode == 0 and "ok   core" in res.stdout


def test_info_lists_presets_and_a_preset_runs_by_name(tmp_path):
    res = run_cli("info", "core:fit", env=NO_PLUGINS)
    assert res.returncode == 0 and "presets (--config NAME): tiny" in res.stdout
    res = run_cli(
        "run",
        "core:fit",
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "r"),
        "--set",
        "trainer.max_steps=3",
        env=NO_PLUGINS,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    import yaml

    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["model_args"] == {"hidden": 16, "layers": 1} and saved["trainer"]["max_steps"] == 3


def test_list_into_a_closed_pipe_is_quiet():
    cmd = f"{sys.executable} -m paperloom list | head -c 10 > /dev/null"
    res = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + cmd],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **NO_PLUGINS},
    )
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr


def test_info_on_a_component_lists_its_builder_arguments():
    res = run_cli("info", "core:mlp", env=NO_PLUGINS)
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split()[1] for line in res.stdout.splitlines()[6:] if line.strip()}
    assert rows == {"features": "8", "hidden": "64", "layers": "2"}
