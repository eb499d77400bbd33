"""Sessions: lint, core tests, each plugin alone (core + lm where needed), all together, demo, benchmarks.

`nox` runs the default sessions (the test suite CI runs). Every session's environment shares one
torch + torchvision install (`.nox/_torch`, a 5 GB wheel pair) through a .pth file; everything
else a package declares is installed per session by pip, so a missing dependency still fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]  # the one pair that imports together on these machines
TORCH_ENV = ROOT / ".nox" / "_torch"

nox.options.sessions = ["lint", "core", "plugin", "together"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"


def _torch_site() -> str:
    """Create the shared torch environment once; return its site-packages folder."""
    py = TORCH_ENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TORCH_ENV)], check=True)
    code = "import torch, torchvision"
    if subprocess.run([str(py), "-c", code], capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *TORCH], check=True)
    out = subprocess.run(
        [str(py), "-c", "import site; print(site.getsitepackages()[0])"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def _install(session: nox.Session, *packages: str) -> None:
    """Link the shared torch, then pip-install the given local packages with their declared deps."""
    site = session.run("python", "-c", "import site; print(site.getsitepackages()[0])", silent=True).strip()
    Path(site, "_paperloom_torch.pth").write_text(_torch_site() + "\n")
    session.install("-q", "pytest", *packages)


def _needs_lm(name: str) -> bool:
    """Does plugins/<name> depend on the shared LM library plugin (paperloom-lm)?"""
    return name != "lm" and "paperloom-lm" in (ROOT / "plugins" / name / "pyproject.toml").read_text()


def _test_extras(name: str) -> list[str]:
    """The requirements of plugins/<name>'s `test` extra (installed by name: pip 23 fails to match a local
    `./plugins/lm[test]` to another plugin's `paperloom-lm` requirement)."""
    import tomllib

    meta = tomllib.loads((ROOT / "plugins" / name / "pyproject.toml").read_text())["project"]
    return list(meta.get("optional-dependencies", {}).get("test", []))


def _env() -> dict:
    # Tests must not depend on a GPU or a hub; keep BLAS to the 2 cores CI has.
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-q", "ruff")
    session.run("ruff", "check", "core", "plugins", "benchmarks", "tests", "noxfile.py")


@nox.session
def core(session: nox.Session) -> None:
    """The core alone: contract, discovery, configs, runs, resume, DDP, scaffold."""
    _install(session, "./core[lightning,plot,test,ray]")  # ray: the executor's Ray backend is tested too
    session.run("pytest", "-q", "core/tests", *session.posargs, env=_env())


@nox.session
@nox.parametrize("name", PLUGINS)
def plugin(session: nox.Session, name: str) -> None:
    """One plugin with only the core (and the lm library, if it builds on it) beside it: it installs and works alone."""
    lm = ["./plugins/lm"] if _needs_lm(name) else []
    _install(session, "./core", *lm, f"./plugins/{name}", *_test_extras(name))
    session.run("core", "list", env=_env())
    session.run("pytest", "-q", f"plugins/{name}/tests", "-m", "not cross_plugin", *session.posargs, env=_env())


@nox.session
def together(session: nox.Session) -> None:
    """Every plugin installed at once: registry consistency and cross-plugin composition."""
    _install(session, "./core[lightning,plot,test]", *[f"./plugins/{n}" for n in PLUGINS],
             *sorted({r for n in PLUGINS for r in _test_extras(n)}))
    session.run("core", "list", env=_env())
    session.run("pytest", "-q", "tests", *session.posargs, env=_env())
    # Each plugin's cross_plugin tests skip when it is installed alone; here every plugin is present. One
    # pytest per plugin: their test modules share names (test_tasks.py, reference.py).
    for name in PLUGINS:
        session.run("pytest", "-q", "-m", "cross_plugin", f"plugins/{name}/tests", env=_env(), success_codes=[0, 5])


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: every plugin's demo on its embedded default, with its claim checked."""
    _install(session, "./core", *[f"./plugins/{n}" for n in PLUGINS])
    session.run("core", "demo", "--out", "runs/demo", *session.posargs, env=_env())


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Speed/memory targets, side by side with each baseline (slow: not part of the tests)."""
    _install(session, "./core", *[f"./plugins/{n}" for n in PLUGINS])
    scripts = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "plugins").glob("*/benchmarks/*.py"))
    for script in scripts:
        session.run("python", str(script), *session.posargs, env=_env())


@nox.session
def build(session: nox.Session) -> None:
    """Wheels and sdists of the core and every plugin into dist/ (`pip install --find-links dist paperloom-x`)."""
    session.install("-q", "build")
    for source in ["core", *[f"plugins/{n}" for n in PLUGINS]]:
        session.run("python", "-m", "build", "-q", "--outdir", str(ROOT / "dist"), source)


@nox.session
def wheelhouse(session: nox.Session) -> None:
    """A fresh environment installs a plugin from the built wheels alone, dependencies resolved by pip, and the
    installed plugin conforms (`nox -s build wheelhouse`; not part of the default sessions: it downloads)."""
    site = session.run("python", "-c", "import site; print(site.getsitepackages()[0])", silent=True).strip()
    Path(site, "_paperloom_torch.pth").write_text(_torch_site() + "\n")
    name = session.posargs[0] if session.posargs else "megalodon"
    session.install("-q", "--find-links", str(ROOT / "dist"), f"paperloom-{name}")
    session.run("core", "check", name, env=_env(), external=False)
