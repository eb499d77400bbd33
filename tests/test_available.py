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


def test_available_outside_a_checkout_uses_the_shipped_index_or_a_url(tmp_path):
    res = subprocess.run([sys.executable, "-m", "paperloom", "available"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0 and "megalodon" in res.stdout and "paperloom/registry.yaml" in res.stdout
    url = (ROOT / "registry.yaml").resolve().as_uri()
    res = subprocess.run([sys.executable, "-m", "paperloom", "available", "--registry", url], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0 and "coconut" in res.stdout


def test_install_from_a_git_repository_subdirectory(tmp_path):
    """A registry entry that is a git URL + subdirectory installs (a local repository over file://)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    res = subprocess.run([sys.executable, "-m", "paperloom", "new", "git-demo", "--dir", str(repo / "plugins")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "plugin"], check=True)
    (tmp_path / "reg.yaml").write_text(
        "plugins:\n  - {name: git-demo, distribution: paperloom-git-demo, version: 0.1.0, summary: s, tasks: [demo],\n"
        f"     core: '>=0.2,<0.3', git: {repo.as_uri()}, subdirectory: plugins/git-demo}}\n")
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "paperloom", "install", "git-demo", "--registry",
                          str(tmp_path / "reg.yaml"), "--", "-q", "--no-deps", "--no-build-isolation", "--target",
                          str(site)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"git+{repo.as_uri()}#subdirectory=plugins/git-demo" in res.stdout
    listing = subprocess.run([sys.executable, "-m", "paperloom", "list"], capture_output=True, text=True,
                             env={**__import__("os").environ, "PYTHONPATH": str(site)})
    assert "git-demo 0.1.0" in listing.stdout
