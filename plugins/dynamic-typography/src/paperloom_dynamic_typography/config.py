"""Task schemas (cheap to import: no torch). Defaults are configs/<task>.yaml, presets configs/<task>/<name>.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom.config import option
from paperloom.contracts import TYPOGRAPHY_FIELDS as FIELDS
from paperloom.contracts import VIDEO_GUIDANCE


@dataclass
class Optimization:
    """What every animation run shares: canvas, fields, guidance, losses and the optimizer (Eq. 6)."""

    model: str = option("dynamic-typography:fields", help="base + motion field model component (plugin:name)",
                        component="model", contract=FIELDS)
    model_args: dict[str, Any] = option({}, help="fields builder arguments: inter_dim, embed_dim, multires, anneal, "
                                                 "rotation_weight, scale_weight, shear_weight, translation_weight, ...")
    guidance: str = option("dynamic-typography:motion-target", component="model", contract=VIDEO_GUIDANCE,
                           help="guidance component: dynamic-typography:sds (a local text-to-video folder) or "
                                "dynamic-typography:motion-target (local CPU stand-in, disclosed in every output)")
    guidance_args: dict[str, Any] = option({}, help="guidance builder arguments (sds: path, guidance_scale, t_min, "
                                                    "t_max, augment; motion-target: amplitude, motion)")
    guidance_weight: float = option(1.0, min=0, help="multiplier of the guidance loss")
    split_global: bool = option(True, help="SDS only: a second pass per step, guidance_scale_global, for the "
                                           "global affine (the reference's split_global_loss)")
    guidance_scale_global: float = option(40.0, min=0, help="SDS guidance scale of the global pass")
    font: str = option("", help="TTF/OTF file (empty: DejaVu Sans from matplotlib)")
    control_points: int = option(100, min=3, help="subdivide the letter's cubics to at least this many control points")
    size: int = option(256, min=16, max=2048, help="canvas side in pixels (render size)")
    frames: int = option(24, min=2, max=256, help="frames of the animation")
    steps: int = option(1000, min=1, help="optimization steps")
    supersample: int = option(2, min=1, max=8, help="rasterizer sub-pixels per side")
    edge_len: float = option(2.0, min=0.25, help="longest polygon edge the cubics are sampled into (sub-pixels)")
    fill_rule: str = option("nonzero", choices=("nonzero", "evenodd"), help="fill rule of the letter's paths")
    raster_backend: str = option("auto", choices=("auto", "torch", "triton"),
                                 help="rasterizer: auto = the Triton kernel on CUDA, torch elsewhere")
    lr_local: float = option(0.005, min=0, help="Adam lr of the base field and the local motion")
    lr_base_global: float = option(0.001, min=0, help="Adam lr of the global affine heads")
    lr_init: float = option(0.002, min=1e-12, help="schedule start (the factor is schedule(step) / lr_init)")
    lr_final: float = option(0.0008, min=1e-12, help="schedule end (base field: lr_final / 5)")
    lr_delay_mult: float = option(0.1, min=0, max=1, help="warm-up start factor")
    lr_delay_frac: float = option(0.1, min=0, max=1, help="warm-up length as a fraction of steps")
    legibility: str = option("auto", choices=("auto", "lpips", "ssim-proxy"),
                             help="perceptual legibility loss: LPIPS (needs lpips + local VGG weights) or 1 - SSIM")
    legibility_weight: float = option(1000.0, min=0, help="weight of the legibility loss")
    schedule: str = option("cos", choices=("cos", "linear", "none"), help="legibility weight schedule")
    schedule_rate: float = option(4.0, min=0, help="schedule amplitude")
    schedule_base: float = option(1.0, min=0, help="schedule floor")
    change_point_frac: float = option(0.25, min=0, max=1, help="'linear' schedule change point / steps")
    structure: bool = option(True, help="use the structure-preservation losses (conformal + transition)")
    conformal_weight: float = option(1000.0, min=0, help="weight of the conformal (angle) loss on the base shape")
    transition_weight: float = option(10000.0, min=0, help="weight of the frame-to-frame transition loss")
    fps: int = option(8, min=1, help="frames per second of the GIF / MP4")
    log_every: int = option(10, min=1, help="log losses every N steps")
    checkpoint_every: int = option(100, min=1, help="write checkpoints/last.pt every N steps (atomically)")


@dataclass
class AnimateConfig(Optimization):
    """Animate one letter of a word to convey the prompt; writes SVG/PNG frames, the word, GIF, MP4, a sheet."""

    word: str = option("CAMEL", help="the word")
    letter: int | str = option("M", help="the letter to animate: a 0-based index or a character of the word")
    prompt: str = option("A camel walks steadily across the desert", help="what the animation should convey")


@dataclass
class RenderConfig:
    """SVG frames (a folder) -> PNG frames (cairosvg), GIF and MP4 (imageio), a contact sheet."""

    frames: str = option("", help="folder of SVG frames (e.g. an animate run's svg/)")
    pattern: str = option("word_*.svg", help="glob of the frames inside the folder, sorted by name")
    height: int = option(0, min=0, help="output height in pixels (0: the SVG's own size)")
    fps: int = option(8, min=1, help="frames per second")
    title: str = option("", help="contact sheet title (default: the first SVG's comment)")


@dataclass
class DemoConfig(Optimization):
    """Animate one letter of each word with the local guidance, with and without the structure losses."""

    words: list[str] = option(["CAMEL:2:A camel walks steadily across the desert",
                               "JUMP:0:A kangaroo jumps high",
                               "FIRE:0:A candle flame flickers in the wind"],
                              help="WORD:LETTER_INDEX:prompt entries")
