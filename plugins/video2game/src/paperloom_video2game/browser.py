"""The headless-browser check of an exported game: Debian's chromium driven by Playwright (``executable_path``, no
downloaded browser), WebGL2 through SwiftShader. Checks what the paper claims of the game page: it loads without
console errors, renders what the Python reference renders for the same camera (PSNR), its shader's MLP equals the
numpy MLP, a dropped object falls and comes to rest, and its frame rate (software GL here)."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

import numpy as np

from paperloom import UserError

ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise UserError("chromium not found: the browser check needs it (apt-get install -y chromium), or skip the check "
                    "with browser.enabled=false")


def require() -> None:
    """chromium and playwright present, else a one-line UserError saying what to install."""
    chromium()
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        raise UserError("the browser check needs Playwright for Python: pip install playwright (its browser download "
                        "is not needed: chromium is used), or set browser.enabled=false")


class Browser:
    """A Chromium page on a URL, with the console errors and page errors it raised."""

    def __init__(self, width: int = 256, height: int = 256):
        self.exe = chromium()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise UserError("the browser check needs Playwright for Python: pip install playwright (its own browser "
                            "download is not needed: chromium is used)") from None
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=self.exe, args=ARGS, headless=True)
        self.page = self.browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, url: str, timeout: float = 90.0) -> None:
        self.page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        self.page.wait_for_function("window.game && (window.game.loaded || window.game.error)",
                                    timeout=timeout * 1000)
        err = self.page.evaluate("window.game.error")
        if err:
            raise RuntimeError(f"the game page failed: {err}")

    def eval(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def render(b: Browser, c2w: np.ndarray, fov: float, width: int, height: int) -> np.ndarray:
    """The page's render of a camera (scene-frame c2w): float (H, W, 3) in [0, 1]."""
    data = b.eval("v => game.render(v)", {"c2w": np.asarray(c2w).reshape(-1).tolist(), "fov": fov,
                                          "width": width, "height": height})
    px = np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)
    return px[..., :3].astype(np.float64) / 255


def drop_test(b: Browser, name: str, height: float, steps: int, every: int = 10) -> dict:
    """Drop `name` from `height` above where it is; positions (scene frame) every `every` steps."""
    b.eval("n => game.step(n)", 1)  # let anything resting settle first
    settle = [b.eval("n => game.step(n)", 30)[name] for _ in range(4)]
    rest_before = np.asarray(settle[-1])
    start = np.asarray(b.eval("([n, h]) => game.drop(n, h)", [name, height]))
    traj = [start]
    for _ in range(max(1, steps // every)):
        traj.append(np.asarray(b.eval("n => game.step(n)", every)[name]))
    traj = np.stack(traj)
    state = b.eval("game.state()")[name]
    tail = traj[-max(2, 60 // every):]
    moved = float(np.abs(tail - tail[-1]).max())
    speed = float(np.linalg.norm(state["velocity"]))
    fell = float(start[2] - traj[-1, 2])
    came_to_rest = bool(moved < 2e-3 and speed < 0.05 and fell > 0.5 * height)
    return {"trajectory": traj, "start": start, "rest_before": rest_before, "end": traj[-1], "fell": fell,
            "end_speed": speed, "tail_motion": moved, "sleeping": bool(state["sleeping"]),
            "came_to_rest": came_to_rest, "min_z": float(traj[:, 2].min())}


def check_game(game_dir: Path, baked_dir: Path, cfg, seed: int = 0, screenshot: Path | None = None, log=None) -> dict:
    """Every browser check on an exported game; returns metrics (floats) and details."""
    import json

    from .bake import mlp_numpy
    from .gltf import load_baked, psnr, reference_render, safe_name
    from .serve import start

    meta = json.loads((game_dir / "scene.json").read_text())
    baked = load_baked(baked_dir)
    baked["objects"] = {safe_name(k): v for k, v in baked["objects"].items()}
    server, url = start(game_dir)
    t0 = time.perf_counter()
    try:
        with Browser(cfg.width, cfg.height) as b:
            b.open(url + "?test=1", cfg.timeout)
            load_s = time.perf_counter() - t0
            info = b.eval("({triangles: game.triangles, hulls: game.hulls, dynamic: game.dynamic, names: game.names})")
            c2w = np.asarray(meta["camera"]["c2w"]).reshape(4, 4)
            fov = meta["camera"]["fov"]
            got = render(b, c2w, fov, cfg.width, cfg.height)
            want, mask = reference_render(baked, c2w, fov, cfg.width, cfg.height, meta["background"])
            out = {"load_s": load_s, "triangles": float(info["triangles"]), "hulls": float(info["hulls"]),
                   "screenshot_psnr": psnr(got, want), "coverage": float(mask.mean())}
            if mask.any():
                out["screenshot_psnr_covered"] = psnr(got[mask], want[mask])
            # the shader's MLP on random inputs vs numpy
            g = np.random.default_rng(seed)
            c = int(np.asarray(baked["mlp"]["layers"][0]["weight"]).shape[1]) - 3
            spec = g.uniform(0, 1, (cfg.probes, 4))
            spec[:, c:] = 0
            d = g.normal(size=(cfg.probes, 3))
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            shader = np.asarray(b.eval("([s, d]) => game.probe(s, d)", [spec.tolist(), d.tolist()]))
            ref = mlp_numpy(spec[:, :c].astype(np.float32), d.astype(np.float32), baked["mlp"])
            out["shader_mlp_max_err"] = float(np.abs(shader - ref).max())
            js = np.asarray(b.eval("xs => xs.map(x => game.mlp(x))", np.concatenate([spec[:, :c], d], 1).tolist()))
            out["js_mlp_max_err"] = float(np.abs(js - ref).max())
            # frame rate: the render alone, and the page's own counter (requestAnimationFrame)
            b.eval("v => game.setView(v)", {"c2w": c2w.reshape(-1).tolist(), "fov": fov})
            out["browser_fps"] = float(b.eval("n => game.benchmark(n).fps", 20))
            time.sleep(1.2)
            out["raf_fps"] = float(b.eval("game.fps"))
            if screenshot is not None:
                b.page.screenshot(path=str(screenshot))
            # a dropped object falls and comes to rest
            dyn = info["dynamic"]
            name = cfg.drop or (dyn[0] if dyn else "ball")
            details = {"got": got, "want": want, "mask": mask}
            if name == "ball" and "ball" not in dyn:  # no movable object reconstructed: throw in a ball
                static = [np.asarray(baked["objects"][k].vertices) for k, o in meta["objects"].items()
                          if o["type"] == "static" and o["hulls"] and k in baked["objects"]]
                v = np.concatenate(static) if static else np.zeros((1, 3))
                at = [float(np.median(v[:, 0])), float(np.median(v[:, 1])), float(v[:, 2].max()) + 0.1]
                b.eval("([n, p]) => game.spawn(n, p)", ["ball", at])
                out["drop_spawned"] = 1.0
            elif name not in dyn:
                raise UserError(f"browser.drop = {name!r}: not a dynamic object of the game (dynamic: {dyn})")
            drop = drop_test(b, name, cfg.drop_height, cfg.steps)
            out.update({"came_to_rest": float(drop["came_to_rest"]), "drop_fell": drop["fell"],
                        "drop_end_speed": drop["end_speed"]})
            details["drop"] = drop
            out["console_errors"] = float(len(b.errors))
            details["errors"] = list(b.errors)
    finally:
        server.shutdown()
        server.server_close()
    if log:
        log.info("browser: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return {"metrics": out, **details}
