"""Declarations of the `video2game` plugin (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

from .config import BAKED_MESH, GAME_EXPORT, NERF_FIELD, POSED_IMAGES, SCENE_MESH

PKG = "paperloom_video2game"
DEMO_SMOKE = {"frames": 8, "video_size": 96, "prepare.size": 32,
              "fit.trainer.max_steps": 6, "fit.trainer.val_every": 6, "fit.trainer.checkpoint_every": 3,
              "fit.rays": 256, "fit.grid.warmup": 2, "fit.grid.every": 2, "fit.turntable": 2,
              "fit.field.levels": 4, "fit.field.log2_table": 10, "fit.field.max_res": 64, "fit.field.grid_res": 16,
              "fit.field.hidden": 16, "mesh.resolution": 24, "mesh.faces": 500, "mesh.level": 0.0,
              "bake.texture": 32, "bake.steps": 4, "bake.pixels": 512, "browser.enabled": False,
              "export.web": False}


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="Video2Game: video -> SfM poses -> Instant-NGP NeRF -> mesh -> baked textured mesh -> collision hulls "
                "-> GLB + three.js / cannon-es browser game",
        paper="Xia et al., Video2Game: Real-time, Interactive, Realistic and Browser-Compatible Environment from a "
              "Single Video (CVPR 2024)",
        url="https://arxiv.org/abs/2404.09833",
        requires=Requirements(packages=("torch>=2.4", "lightning>=2.2", "pycolmap>=3.10", "trimesh>=4.0",
                                        "xatlas>=0.0.9", "fast-simplification>=0.1.7", "scikit-image>=0.21",
                                        "imageio-ffmpeg>=0.4.9", "coacd>=1.0.5"), gpu="optional", memory_gb=4),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        Component("ngp", "model", f"{PKG}.components:build_ngp",
                  "Instant-NGP radiance field: hash grid + MLPs + occupancy grid over the contracted scene "
                  "(path=FIT_RUN loads a trained one)"),
        Component("baked", "model", f"{PKG}.components:build_baked",
                  "baked appearance: 8-bit diffuse + specular textures and a hidden-32 view-dependent MLP"),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    return [
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="generated scene video -> prepare (SfM) -> fit -> mesh -> bake; NeRF vs baked PSNR",
             smoke=DEMO_SMOKE,
             verify=(Check("nerf_psnr", ">", 18.0, summary="the NeRF reconstructs held-out views"),
                     Check("baked_psnr", ">", 12.0, summary="the baked mesh renders held-out views it covers"),
                     Check("coverage", ">", 0.01, summary="the mesh covers at least 1% of the held-out pixels"),
                     Check("triangles", ">", 1000.0, summary="marching cubes gave a real mesh"),
                     Check("sfm_rot_err_deg", "<", 1.0, summary="SfM poses agree with the known ones"),
                     Check("hulls_convex", ">=", 1.0, summary="every collision hull is convex"),
                     Check("hulls", ">", 1.0, summary="the scene has collision hulls (static tiles + objects)"),
                     Check("browser_console_errors", "<=", 0.0, summary="the game page loads without console errors"),
                     Check("screenshot_psnr", ">", 30.0,
                           summary="the browser's render matches the Python reference render of the same camera"),
                     Check("shader_mlp_max_err", "<", 1e-4, summary="the page's GLSL MLP equals the numpy MLP"),
                     Check("came_to_rest", ">=", 1.0, summary="a dropped object falls and comes to rest"),
                     Check("browser_fps", ">", 5.0, summary="the game renders in real time (software GL here)"))),
        Task("prepare", f"{PKG}.tasks:prepare", f"{PKG}.config:PrepareConfig",
             summary="video / images / transforms.json / COLMAP -> posed frames in the scene box (SfM when unposed)",
             artifacts={"dataset": POSED_IMAGES}),
        Task("fit", f"{PKG}.tasks:fit", f"{PKG}.config:FitConfig",
             summary="train the Instant-NGP NeRF (Lightning, resumable); PSNR/SSIM on held-out views",
             smoke={"trainer.max_steps": 4, "rays": 128, "field.levels": 4, "field.log2_table": 10,
                    "field.grid_res": 16, "turntable": 0},
             artifacts={"nerf": NERF_FIELD}),
        Task("mesh", f"{PKG}.tasks:mesh", f"{PKG}.config:MeshConfig",
             summary="marching cubes of the density, clean-up, decimation, un-contraction, per-object meshes",
             smoke={"resolution": 24, "faces": 500, "level": 0.0}, artifacts={"mesh": SCENE_MESH}),
        Task("bake", f"{PKG}.tasks:bake", f"{PKG}.config:BakeConfig",
             summary="UV atlas + 8-bit diffuse/specular textures + view-dependent MLP (JSON), PSNR vs the NeRF",
             smoke={"texture": 32, "steps": 3, "pixels": 256}, artifacts={"baked": BAKED_MESH}),
        Task("export", f"{PKG}.tasks:export", f"{PKG}.config:ExportConfig",
             summary="collision hulls (CoACD / V-HACD) + GLB (trimesh) + MLP JSON + bundled three.js / cannon-es page",
             smoke={"web": False}, artifacts={"game": GAME_EXPORT}),
        Task("play", f"{PKG}.tasks:play", f"{PKG}.config:PlayConfig",
             summary="serve an exported game on localhost and print its URL (Ctrl-C stops)", smoke={"seconds": 0.5}),
    ]
