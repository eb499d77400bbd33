"""``video2game:demo``: the reconstruction half of Video2Game on a generated scene, end to end.

A scene (textured ground, a glossy vase, a textured box) is rendered along an orbit into an MP4 with known poses;
prepare poses the video's frames by SfM (pycolmap) and reports their error against the known poses (falling back to
the known poses if SfM registers too few frames, and saying so); fit trains the NeRF; mesh extracts, cleans and
splits the mesh by the scene's object boxes; bake textures it. Reported: NeRF PSNR / SSIM on held-out views, the
baked mesh's PSNR next to the NeRF's on the same (mesh-covered) pixels, triangle count, SfM pose error.
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
    summary = ", ".join(f"{k} {results[k]:.3f}" for k in ("nerf_psnr", "nerf_ssim", "baked_psnr", "nerf_psnr_masked",
                                                           "baked_gap_db", "triangles", "sfm_rot_err_deg")
                        if k in results)
    ctx.log.info("demo: " + summary)
    return results
