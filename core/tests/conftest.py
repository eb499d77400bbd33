import os
import sys
import textwrap
from pathlib import Path

import pytest

from paperloom.plugins import set_registry


@pytest.fixture(autouse=True)
def _fresh_registry():
    set_registry(None)
    yield
    set_registry(None)


def make_dist(root: Path, dist: str, version: str, entry: str, module: str, source: str, requires: tuple = ()) -> None:
    """A fake installed distribution (dist-info + module) that importlib.metadata discovers on sys.path."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    reqs = "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{reqs}")
    (info / "entry_points.txt").write_text(f"[paperloom.plugins]\n{entry} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A folder on sys.path where tests install fake plugin distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PAPERLOOM_DISABLE_PLUGINS", raising=False)
    yield site
    for name in [m for m in sys.modules if m.startswith("fakeplug")]:
        del sys.modules[name]


def run_cli(*args, env=None, cwd=None):
    """Run `python -m paperloom ...` in a subprocess; returns CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "paperloom", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600
    )
