"""Builders of video2game's components, ``builder(ctx, **kwargs)``: the ``ngp`` radiance field and the ``baked``
appearance (textures + view-dependent MLP)."""

from __future__ import annotations

from typing import Any

from .config import NeRFConfig


def build_ngp(ctx: Any, path: str = "", **sizes: Any):
    """An Instant-NGP field with the given sizes (NeRFConfig fields), or the trained one in `path` (a fit run
    folder or its nerf/ folder)."""
    from .model import NeRFField

    if path:
        from .nerf import load_nerf
        from .tasks import NERF_DIR, upstream

        return load_nerf(upstream(path, NERF_DIR, "fit"), getattr(ctx, "device", "cpu"))[0]
    return NeRFField(NeRFConfig(**sizes))


def build_baked(ctx: Any, texture: int = 512, specular_dim: int = 3, hidden: int = 32, quantize: bool = True):
    """Per-texel diffuse + specular features (8-bit, straight-through) and the tiny view-dependent MLP."""
    from .bake import BakedAppearance

    return BakedAppearance(texture, specular_dim, hidden, quantize)
