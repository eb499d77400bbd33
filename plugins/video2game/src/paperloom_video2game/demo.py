"""``video2game:demo``: Video2Game on a generated scene, end to end (reconstruction, then the game).

A scene (textured ground, a glossy vase, a textured box) is rendered along an orbit into an MP4 with known poses;
prepare poses the video's frames by SfM (pycolmap) and reports their error against the known poses (falling back to
the known poses if SfM registers too few frames, and saying so); fit trains the NeRF; mesh extracts, cleans and
splits the mesh by the scene's object boxes; bake textures it. Reported: NeRF PSNR / SSIM on held-out views, the
baked mesh's PSNR next to the NeRF's on the same (mesh-covered) pixels, triangle count, SfM pose error.
Part 2: collision hulls, the GLB + web export, and a headless-Chromium check of the game page (console errors,
screenshot PSNR against the Python reference render of the same camera, the shader MLP against numpy, a dropped
object coming to rest, frame rate), with a screenshot PNG.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from paperloom.io import atomic_write_json, read_json

from .config import DemoConfig


def boxes_in_scene_box(boxes: dict, transform: np.ndarray) -> dict[str, list[float]]:
    """World boxes [[lo], [hi]] -> axis-aligned boxes around their corners after x' = transform x."""
    out = {}
    for name, (lo, hi) in boxes.items():
        corners = np.array(list(itertools.product(*zip(lo, hi))))
        c = corners @ transform[:3, :3].T + transform[:3, 3]
        out[name] = [*c.min(0).tolist(), *c.max(0).tolist()]
    return out


def demo(cfg: DemoConfig, ctx) -> dict[str, float]:
    from .nerf import load_nerf
    from .synthetic import make_capture
    from .tasks import BAKED_DIR, DATASET_DIR, MESH_DIR, NERF_DIR, bake_mesh, fit_frames, load_dataset, mesh_field
    from .tasks import prepare as prepare_task

    if cfg.export.web:
        from .web import tool

        tool("node"), tool("npm")  # before any work: a missing tool is a one-line error, nothing half-made
    if cfg.browser.enabled:
        from .browser import require

        if not cfg.export.web:
            from paperloom import UserError

            raise UserError("browser.enabled=true needs export.web=true (the page to test); set browser.enabled=false")
        require()
    cap = ctx.out / "capture"
    if not (ctx.resume and (cap / "scene.json").is_file()):
        make_capture(cap, cfg.frames, cfg.video_size, ctx.seed)
    paths = {"video": cap / "video.mp4", "known": cap / "known" / "transforms.json"}
    results: dict[str, float] = {}

    st = ctx.stage("prepare")
    if not (ctx.resume and (st.out / "result.json").is_file()):  # a resumed demo skips finished stages
        pcfg = replace(cfg.prepare, input=str(paths["video"]), known_poses=str(paths["known"]))
        atomic_write_json(st.out / "result.json", prepare_task(pcfg, st))
    results.update({f"prepare_{k}": v for k, v in read_json(st.out / "result.json").items()})
    meta = read_json(st.out / DATASET_DIR / "transforms.json")
    report = meta["paperloom"]
    for k in ("sfm_registered", "sfm_frames", "fallback_known_poses", "sfm_rot_err_deg", "sfm_trans_dir_err_deg",
              "sfm_centre_rmse_rel"):
        if k in report:
            results[k] = float(report[k])
    if report.get("fallback_known_poses"):
        ctx.log.warning("SfM registered too few frames: the demo continues with the known poses")
    frames = load_dataset(str(st.out), "")

    st = ctx.stage("fit")
    if not (ctx.resume and (st.out / "result.json").is_file()):
        fit_out = fit_frames(cfg.fit, st, frames, {"data": str(ctx.out / "stages" / "prepare"), "dataset": ""})
        atomic_write_json(st.out / "result.json", fit_out)
    results.update(read_json(st.out / "result.json"))
    field, march, _ = load_nerf(st.out / NERF_DIR, ctx.device)

    st = ctx.stage("mesh")
    transform = np.asarray(meta["applied_transform"]) @ np.asarray(report["known_to_poses"])
    boxes = boxes_in_scene_box(read_json(cap / "scene.json")["boxes"], transform)
    mcfg = replace(cfg.mesh, boxes=boxes)
    results.update({f"mesh_{k}": v for k, v in mesh_field(mcfg, st, field, st.out / MESH_DIR).items()})
    results["triangles"] = results["mesh_triangles"]

    st = ctx.stage("bake")
    bake_out = bake_mesh(cfg.bake, st, ctx.out / "stages" / "mesh" / MESH_DIR, frames, cfg.fit.holdout_every,
                         field, march)
    results.update({k: v for k, v in bake_out.items() if k != "triangles"})
    ctx.log.info(f"outputs: {ctx.out / 'stages' / 'bake' / BAKED_DIR}, side-by-side "
                 f"{ctx.out / 'stages' / 'bake' / 'side_by_side.png'}")
    results.update(game_stages(cfg, ctx, ctx.out / "stages" / "bake" / BAKED_DIR))
    summary = ", ".join(f"{k} {results[k]:.3f}" for k in ("nerf_psnr", "nerf_ssim", "baked_psnr", "nerf_psnr_masked",
                                                           "baked_gap_db", "triangles", "sfm_rot_err_deg", "hulls",
                                                           "browser_fps", "screenshot_psnr", "came_to_rest")
                        if k in results)
    ctx.log.info("demo: " + summary)
    return results


def game_stages(cfg: DemoConfig, ctx, baked_dir) -> dict[str, float]:
    """Part 2 on the baked scene: export (hulls, GLB, page), then the headless-browser check."""
    import time

    from .gltf import export_game
    from .tasks import GAME_DIR

    out: dict[str, float] = {}
    st = ctx.stage("export")
    t0 = time.perf_counter()
    ecfg = replace(cfg.export, scene=str(baked_dir))
    ex = export_game(ecfg, st, baked_dir, st.out / GAME_DIR)
    out.update({f"export_{k}": v for k, v in ex.items()})
    out.update({"hulls": ex["hulls"], "hulls_convex": ex["hulls_convex"], "game_triangles": ex["triangles"],
                "export_s": time.perf_counter() - t0})
    if not cfg.browser.enabled:
        return out
    from .browser import check_game
    from .plots import browser_figure

    st = ctx.stage("browser")
    t0 = time.perf_counter()
    res = check_game(ctx.out / "stages" / "export" / GAME_DIR, baked_dir, cfg.browser, ctx.seed,
                     screenshot=ctx.out / "game_screenshot.png", log=ctx.log)
    m = res["metrics"]
    out.update({"browser_fps": m["browser_fps"], "raf_fps": m["raf_fps"], "screenshot_psnr": m["screenshot_psnr"],
                "shader_mlp_max_err": m["shader_mlp_max_err"], "js_mlp_max_err": m["js_mlp_max_err"],
                "browser_console_errors": m["console_errors"], "browser_load_s": m["load_s"],
                "browser_triangles": m["triangles"], "browser_hulls": m["hulls"],
                "browser_s": time.perf_counter() - t0})
    for k in ("screenshot_psnr_covered", "came_to_rest", "drop_fell", "drop_end_speed", "drop_spawned", "coverage"):
        if k in m:
            out["game_coverage" if k == "coverage" else k] = m[k]
    browser_figure(ctx.out / "game_check.png", res)
    if res.get("errors"):
        ctx.log.warning("browser console errors: " + " | ".join(res["errors"][:5]))
    ctx.log.info(f"game: {ctx.out / 'stages' / 'export' / GAME_DIR} (core run video2game:play --set "
                 f"scene={ctx.out / 'stages' / 'export'}), screenshot {ctx.out / 'game_screenshot.png'}")
    return out
