"""video2game's hot paths side by side with their baselines (`nox -s benchmarks`, or run this file).

1. NeRF ray marching with the occupancy grid (empty-space skipping + early termination) vs the dense marcher, on a
   field whose occupied region is a small part of the scene: training rays/s (forward + backward) and rendering
   rays/s (no gradients). Target: >= 3x for the grid.
2. Baking: xatlas atlas + ray casting of the views + optimisation steps, seconds.
3. Hash encoding torch vs Triton: GPU only; skipped on CPU (and no Triton kernel is implemented yet).
4. The game page (headless Chromium, SwiftShader): cannon-es step time with the raw convex hulls vs the k-DOP
   bounded ones (`collision.max_faces`), and the render's frames per second. Skipped without chromium / npm.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def mostly_empty_field(grid_res: int = 48):
    """A hash-grid field with the demo's sizes whose density is a solid ball (radius 0.35) and empty elsewhere:
    the density MLP's bias is set so the ball is opaque, the grid marks the ball's cells."""
    from paperloom_video2game.config import NeRFConfig
    from paperloom_video2game.model import NeRFField

    torch.manual_seed(0)
    field = NeRFField(NeRFConfig(levels=6, log2_table=14, max_res=128, hidden=32, grid_res=grid_res))
    base = field._features

    def features(y):
        sigma, geo = base(y)
        inside = (y.norm(dim=-1) < 0.35).float()
        return sigma * 0 + 1e-3 + 200 * inside + sigma * 1e-3, geo  # keeps gradients to every parameter

    field._features = features
    field.grid.update(field.density, threshold=0.5, decay=0.0, samples=2)
    return field


def rays(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    o = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1) * 2.5
    target = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    return o, torch.nn.functional.normalize(target - o, dim=-1)


def bench_march(n_rays: int, repeat: int) -> list[tuple]:
    from paperloom_video2game.config import MarchConfig
    from paperloom_video2game.render import render

    field = mostly_empty_field()
    march = MarchConfig(near=0.5, far=100.0, dt_min=0.03, dt_max=4.0, cone=1 / 32, chunk=16)
    o, d = rays(n_rays)
    jitter = torch.rand(n_rays, 1)
    rows = []
    for name, kw in (("dense", {"grid": False, "early_stop": False}), ("grid", {"grid": True, "early_stop": True})):
        def train_step(kw=kw):
            out = render(field, o, d, march, jitter=jitter, weights=True, **kw)
            (out["rgb"].sum() + out["opacity"].sum()).backward()

        def render_only(kw=kw):
            with torch.no_grad():
                render(field, o, d, march, **kw)

        with torch.no_grad():
            samples = render(field, o, d, march, **kw)["samples"] / n_rays
        rows.append((name, n_rays / timed(train_step, repeat), n_rays / timed(render_only, repeat), samples))
    print(f"occupied cells: {float(field.grid.mask.float().mean()):.1%} of the contracted cube")
    return rows


def bench_bake(size: int, views: int, steps: int) -> dict:
    import trimesh
    from paperloom_video2game.bake import BakedAppearance, atlas, view_hits
    from paperloom_video2game.data import Frames
    from paperloom_video2game.synthetic import intrinsics, orbit

    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.6)
    c2w = orbit(views, target=(0, 0, 0))
    frames = Frames(np.full((views, size, size, 3), 128, np.uint8), c2w, np.tile(intrinsics(size), (views, 1)),
                    [f"{i}.png" for i in range(views)])
    t0 = time.perf_counter()
    split, uv, _ = atlas(mesh)
    t1 = time.perf_counter()
    hits = view_hits(split, uv, frames, list(range(views)))
    t2 = time.perf_counter()
    uvs, dirs, rgb = (torch.cat([h[k] for h in hits]) for k in ("uv", "dir", "rgb"))
    model = BakedAppearance(256, 3, 32)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        idx = torch.randint(len(uvs), (16384,))
        loss = (model(uvs[idx], dirs[idx]) - rgb[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t3 = time.perf_counter()
    return {"faces": len(mesh.faces), "atlas_s": t1 - t0, "raycast_s": t2 - t1, "rays": views * size * size,
            "optimise_s_per_step": (t3 - t2) / steps}


def bench_game(steps: int = 120) -> list[tuple] | str:
    """Physics ms/step and render fps of the synthetic game, hulls raw (max_faces=0) vs bounded (max_faces=32)."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    if shutil.which("chromium") is None or shutil.which("npm") is None:
        return "skipped: needs chromium and npm"
    from paperloom_video2game.browser import Browser
    from paperloom_video2game.config import CollisionConfig, ExportConfig
    from paperloom_video2game.gltf import export_game
    from paperloom_video2game.serve import start
    from paperloom_video2game.synthetic import make_baked

    from paperloom.context import Run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baked = make_baked(Path(tmp) / "baked")
        for max_faces in (0, 32):
            out = Path(tmp) / f"faces{max_faces}"
            cfg = ExportConfig(collision=CollisionConfig(method="hull", max_faces=max_faces))
            m = export_game(cfg, Run(out=out, plugin="video2game", task="bench"), baked, out / "game")
            bodies = json.loads((out / "game" / "colliders.json").read_text())["bodies"]
            faces = sum(len(h["faces"]) for b in bodies for h in b["hulls"])
            server, url = start(out / "game")
            try:
                with Browser(256, 256) as b:
                    b.open(url + "?test=1")
                    b.eval("() => { game.drop('box', 0.4); game.drop('vase', 0.6); }")
                    ms = b.eval(f"() => {{ const t = performance.now(); game.step({steps}); "
                                f"return (performance.now() - t) / {steps}; }}")
                    fps = b.eval("game.benchmark(30).fps")
            finally:
                server.shutdown()
            rows.append((max_faces, int(m["hulls"]), faces, ms, fps))
    return rows


def bench_hash(n: int = 1 << 18, repeat: int = 20) -> list[tuple[str, float]]:
    """Forward + backward into the table of the paper-size hash encoding on CUDA, torch path vs the Triton kernels."""
    from paperloom_video2game.model import HashEncoding

    out = []
    u = torch.rand(n, 3, device="cuda")
    for backend in ("torch", "triton"):
        enc = HashEncoding(16, 2, 19, 16, 2048, backend=backend).cuda()

        def step(enc=enc):
            enc(u).sum().backward()
            torch.cuda.synchronize()

        step()  # compile / warm up
        out.append((backend, 1000 * timed(step, repeat)))
    out.append(("torch / triton", out[0][1] / out[1][1]))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rays", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    print("== NeRF ray marching: occupancy grid vs dense (1 thread)")
    rows = bench_march(args.rays, args.repeat)
    print(f"{'marcher':8s} {'train rays/s':>13s} {'render rays/s':>14s} {'samples/ray':>12s}")
    for name, tr, rr, s in rows:
        print(f"{name:8s} {tr:13.0f} {rr:14.0f} {s:12.1f}")
    (_, dtr, drr, _), (_, gtr, grr, _) = rows
    print(f"grid / dense: training {gtr / dtr:.1f}x, rendering {grr / drr:.1f}x (target >= 3x)")
    print("== baking: 64x64 views of a 5120-face mesh, 256^2 textures")
    b = bench_bake(64, 16, 20)
    print(f"atlas {b['atlas_s']:.2f} s, ray casting {b['rays']} rays {b['raycast_s']:.2f} s "
          f"({b['rays'] / b['raycast_s']:.0f} rays/s), optimisation {1000 * b['optimise_s_per_step']:.1f} ms/step")
    print("== game page: cannon-es step with raw hulls vs k-DOP bounded hulls (synthetic scene, 1 hull per object)")
    g = bench_game()
    if isinstance(g, str):
        print(g)
    else:
        print(f"{'max_faces':>9s} {'hulls':>6s} {'faces':>6s} {'ms/step':>8s} {'render fps':>11s}")
        for mf, h, f, ms, fps in g:
            print(f"{mf:9d} {h:6d} {f:6d} {ms:8.2f} {fps:11.1f}")
        print(f"bounded / raw: physics {g[0][3] / g[1][3]:.1f}x faster")
    print("== hash encoding torch vs Triton (16 levels x 2 features, T = 2^19, 2^18 points, forward + table backward)")
    if torch.cuda.is_available():
        for name, v in bench_hash():
            print(f"{name:14s} {v:8.3f} {'x' if '/' in name else 'ms'}")
    else:
        print("skipped: GPU only (no CUDA device here; the kernels are tested in the Triton interpreter)")


if __name__ == "__main__":
    main()
