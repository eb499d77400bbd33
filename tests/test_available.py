"""`core available` / `core install` read registry.yaml; install runs pip on the listed path."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def core(*args):
    return subprocess.run([sys.executable, "-m", "paperloom", *args], capture_output=True, text=True, cwd=ROOT)


def test_available_lists_the_registry():
    res = core("available")
    assert res.returncode == 0, res.stderr
    assert "plugin" in res.stdout and "registry.yaml" in res.stdout


def test_install_dry_run_names_the_local_path():
    from paperloom.registry_file import load_registry

    _, entries = load_registry(str(ROOT / "registry.yaml"))
    for entry in entries:
        res = core("install", entry["name"], "--dry-run")
        assert res.returncode == 0
        assert str((ROOT / entry["path"]).resolve()) in res.stdout and "pip install" in res.stdout
        for needed in entry.get("requires", []):  # e.g. megalodon brings the lm library along
            assert str((ROOT / "plugins" / needed).resolve()) in res.stdout
    res = core("install", "no-such-plugin", "--dry-run")
    assert res.returncode == 2 and "not in" in res.stderr
