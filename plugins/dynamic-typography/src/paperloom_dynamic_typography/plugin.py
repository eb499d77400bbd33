"""Declarations of the `dynamic-typography` plugin (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

from .config import FIELDS, VIDEO_GUIDANCE

PKG = "paperloom_dynamic_typography"
TINY = {"size": 32, "frames": 3, "steps": 3, "control_points": 24, "model_args": {"inter_dim": 8, "embed_dim": 4}}


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="Dynamic Typography: animate one letter of a word (base + motion fields, a PyTorch vector "
                "rasterizer, text-to-video SDS or a disclosed local guidance)",
        paper="Liu et al., Dynamic Typography: Bringing Words to Life (arXiv 2404.11614)",
        url="https://arxiv.org/abs/2404.11614",
        requires=Requirements(packages=("torch>=2.4", "fonttools>=4.40", "scipy>=1.10", "cairosvg>=2.7",
                                        "imageio>=2.31"), gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        Component("fields", "model", f"{PKG}.components:build_fields",
                  "base field + motion field (frequency encoding, annealing, per-frame global affine)",
                  produces=(FIELDS,)),
        Component("sds", "model", f"{PKG}.components:build_sds",
                  "score distillation from a local diffusers text-to-video folder (UNet3D + VAE + CLIP), "
                  "guidance 30, t ~ U[50, 950)", produces=(VIDEO_GUIDANCE,)),
        Component("motion-target", "model", f"{PKG}.components:build_motion_target",
                  "LOCAL CPU stand-in guidance: a procedural motion target from the prompt's verb (disclosed)",
                  produces=(VIDEO_GUIDANCE,)),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    return [
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="animate a letter of 3 words on CPU (local guidance), with vs without the structure losses",
             smoke={**TINY, "words": ["LO:1:the O pulses"]},
             verify=(Check("iou_min", ">", 0.9, summary="legible: base frame IoU with the glyph > 0.9, every word"),
                     Check("motion_min", ">", 0.02, summary="moving: mean point motion > 2% of the canvas, every word"),
                     Check("conformal_ratio_min", ">", 5.0,
                           summary="structure losses keep the frames' angles: conformal loss without / with > 5"))),
        Task("animate", f"{PKG}.tasks:animate", f"{PKG}.config:AnimateConfig",
             summary="animate one letter of a word from a prompt: SVG + PNG frames, the word, GIF, MP4, contact sheet",
             smoke=TINY),
        Task("render", f"{PKG}.tasks:render", f"{PKG}.config:RenderConfig",
             summary="a folder of SVG frames -> PNG frames, GIF, MP4 and a contact sheet"),
    ]
