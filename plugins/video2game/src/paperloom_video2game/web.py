"""The web page of the game, built at export time: `npm ci` of the plugin's pinned package.json / package-lock.json
(three.js, cannon-es, esbuild from the npm registry) into a cache folder keyed by the lock file's hash, then esbuild
bundles web/src/main.js (this plugin's own code) with them into one offline `app.js` beside `index.html`. No
third-party JavaScript is kept in the repository; node_modules lives only in the cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from paperloom import UserError

WEB = Path(__file__).parent / "web"


def lock_hash() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((WEB / name).read_bytes())
    return h.hexdigest()[:16]


def default_cache() -> Path:
    base = os.environ.get("PAPERLOOM_VIDEO2GAME_WEB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "paperloom", "video2game-web")
    return Path(base)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} not found on PATH: the game export needs Node.js >= 18 and npm "
                        "(apt-get install -y nodejs npm, or https://nodejs.org)")
    return path


def modules(cache: str | Path = "", log=None) -> Path:
    """node_modules of the pinned lock file (npm ci once per lock hash; reused afterwards)."""
    root = Path(cache).expanduser() if cache else default_cache()
    folder = root / lock_hash()
    if (folder / "node_modules" / ".paperloom-ok").is_file():
        return folder / "node_modules"
    npm = tool("npm")
    tool("node")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(WEB / name, folder / name)
    if log:
        log.info(f"npm ci (three.js, cannon-es, esbuild) -> {folder}")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                       capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        raise UserError(f"npm ci failed in {folder} ({tail[0]}); check access to the npm registry "
                        "(npm config get registry)")
    (folder / "node_modules" / ".paperloom-ok").write_text("ok\n")
    return folder / "node_modules"


def esbuild(node_modules: Path) -> list[str]:
    exe = node_modules / ".bin" / "esbuild"
    if not exe.exists():
        raise UserError(f"{exe}: missing; remove {node_modules.parent} and export again")
    return [str(exe)]


def build(out: Path, cache: str | Path = "", minify: bool = True, log=None) -> dict:
    """index.html + app.js (bundled) into `out`; returns {"app_bytes": ...}."""
    nm = modules(cache, log)
    out.mkdir(parents=True, exist_ok=True)
    cmd = esbuild(nm) + [str(WEB / "src" / "main.js"), "--bundle", "--format=iife", "--target=es2020",
                         f"--outfile={out / 'app.js'}", "--log-level=error", "--legal-comments=eof"]
    if minify:
        cmd.append("--minify")
    env = {**os.environ, "NODE_PATH": str(nm)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise UserError(f"esbuild failed bundling {WEB / 'src' / 'main.js'}: {(r.stderr or r.stdout).strip()[:300]}")
    shutil.copyfile(WEB / "index.html", out / "index.html")
    return {"app_bytes": float((out / "app.js").stat().st_size)}


def run_node(script: str, cwd: Path | None = None, timeout: float = 60) -> str:
    """Run an ES-module script with node (the tests evaluate web/src/mlp.js this way)."""
    node = tool("node")
    r = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, cwd=cwd,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"node failed: {r.stderr.strip()[-500:]}")
    return r.stdout
