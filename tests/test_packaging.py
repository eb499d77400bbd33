"""The built distributions are complete: wheels of the core and every plugin, installed without the checkout,
carry their configs and presets and pass the conformance kit's static checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())


def test_wheels_install_and_conform_outside_the_checkout(tmp_path):
    dist, site = tmp_path / "dist", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "-q"]
    sources = [str(ROOT / "core"), *[str(ROOT / "plugins" / n) for n in PLUGINS]]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), *sources], check=True,
                   capture_output=True)
    wheels = sorted(p.name.split("-")[0] for p in dist.glob("*.whl"))
    assert wheels == sorted(["paperloom_core", *[f"paperloom_{n.replace('-', '_')}" for n in PLUGINS]])
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), *map(str, dist.glob("*.whl"))], check=True,
                   capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    for name in PLUGINS:
        res = subprocess.run([sys.executable, "-m", "paperloom", "check", name, "--no-run"], capture_output=True,
                             text=True, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        assert str(site) in subprocess.run(
            [sys.executable, "-c", f"import paperloom_{name.replace('-', '_')} as m; print(m.__file__)"],
            capture_output=True, text=True, env=env, check=True).stdout  # the wheel, not the checkout
