"""Builders of the plugin's components, ``builder(ctx, **kwargs)``: the fields model and the two guidances."""

from __future__ import annotations

from typing import Any

from paperloom import UserError

from .guidance import MotionTargetGuidance, SDSGuidance
from .model import FieldsConfig, TypographyFields


def build_fields(ctx: Any, n_points: int = 100, n_frames: int = 24, zero_init: bool = True,
                 **kwargs: Any) -> TypographyFields:
    """TypographyFields for a letter of n_points control points and n_frames frames (FieldsConfig keywords)."""
    known = set(FieldsConfig.__dataclass_fields__)
    bad = sorted(set(kwargs) - known)
    if bad:
        raise UserError(f"model_args: {bad[0]!r} is not a fields option; expected one of {', '.join(sorted(known))}")
    return TypographyFields(FieldsConfig(n_points=n_points, n_frames=n_frames, **kwargs), zero_init)


def build_sds(ctx: Any, path: str = "", prompt: str = "", guidance_scale: float = 30.0, t_min: int = 50,
              t_max: int = 950, augment: bool = True) -> SDSGuidance:
    """SDS from a local diffusers text-to-video folder (`path`: unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""
    if not path:
        raise UserError("guidance=dynamic-typography:sds needs guidance_args.path: a local diffusers text-to-video "
                        "folder (e.g. damo-vilab/text-to-video-ms-1.7b downloaded beforehand)")
    if not 0 <= t_min < t_max <= 1000:
        raise UserError(f"guidance_args: t_min={t_min}, t_max={t_max}; expected 0 <= t_min < t_max <= 1000")
    return SDSGuidance.from_folder(path, prompt, device=str(getattr(ctx, "device", "cpu")),
                                   guidance_scale=guidance_scale, t_min=t_min, t_max=t_max, augment=augment)


def build_motion_target(ctx: Any, prompt: str = "", amplitude: float = 0.08, motion: str = "") -> MotionTargetGuidance:
    """The local CPU guidance (not a video model): motion picked from the prompt's verb, or `motion`."""
    return MotionTargetGuidance(prompt, amplitude, motion)
