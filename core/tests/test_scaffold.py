"""`core new` output installs with pip, lists, and passes `core check` without edits."""

import subprocess
import sys

from conftest import run_cli


def test_new_plugin_installs_lists_and_conforms(tmp_path):
    res = run_cli("new", "demo-plugin", "--dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(tmp_path / "demo-plugin"),
        ],
        check=True,
        capture_output=True,
    )
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("list", env=env)
    assert "demo-plugin 0.1.0  (paperloom-demo-plugin)" in listing.stdout, listing.stdout + listing.stderr
    assert "demo-plugin:linear" in listing.stdout
    check = run_cli("check", "demo-plugin", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all checks passed" in check.stdout
    verify = run_cli("verify", "demo-plugin:demo", "--out", str(tmp_path / "v"), env=env)
    assert verify.returncode == 0 and "PASS" in verify.stdout
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "demo-plugin" / "tests")],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
    )
    assert tests.returncode == 0, tests.stdout[-2000:]
    shape = {p.relative_to(tmp_path / "demo-plugin").as_posix() for p in (tmp_path / "demo-plugin").rglob("*.py")}
    assert {f"src/paperloom_demo_plugin/{m}.py" for m in ("plugin", "config", "components", "tasks", "model")} <= shape
    again = run_cli("new", "demo-plugin", "--dir", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr
