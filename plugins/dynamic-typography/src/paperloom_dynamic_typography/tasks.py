"""Task functions fn(cfg, ctx) -> metrics: ``animate`` (a letter of a word) and ``render`` (SVG frames -> video)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paperloom import UserError
from paperloom.io import atomic_write_json

from .config import AnimateConfig, Optimization, RenderConfig


def letter_index(word: str, letter: int | str) -> int:
    """`letter` as a 0-based index ("2") or a character of the word ("M": its first occurrence)."""
    s = str(letter)
    if s.lstrip("-").isdigit():
        return int(s)
    if len(s) == 1 and s in word:
        return word.index(s)
    raise UserError(f"letter={letter!r} is neither an index nor a character of word={word!r}; "
                    f"set letter=0..{len(word) - 1} or one of its letters")


def animate_letter(word: str, index: int, prompt: str, o: Optimization, ctx: Any, out: Path,
                   structure: bool = True) -> tuple[dict[str, float], Any]:
    """Glyph -> fields (ctx.build) + guidance (ctx.build) -> optimize -> outputs under `out`."""
    from .animate import optimize
    from .glyph import extract
    from .outputs import write_animation

    glyph = extract(word, index, o.font, o.control_points, o.size)
    fields = ctx.build(o.model, n_points=len(glyph.points), n_frames=o.frames, **o.model_args)
    guidance = ctx.build(o.guidance, prompt=prompt, **o.guidance_args)
    ctx.log.info(f"{word}[{index}] = {glyph.letter!r}: {len(glyph.points)} control points in {len(glyph.sizes)} "
                 f"path(s); {guidance.disclosure}")
    res = optimize(glyph, fields, guidance, o, ctx, structure=structure and o.structure)
    note = f"dynamic-typography | {word}[{index}] | prompt: {prompt} | {guidance.disclosure}"
    write_animation(out, glyph, res.base, res.frames, note, o.fps, o.fill_rule)
    atomic_write_json(out / "points.json", {"sizes": glyph.sizes, "glyph": glyph.points.tolist(),
                                             "base": res.base.tolist(), "frames": res.frames.tolist(),
                                             "guidance": guidance.name, "disclosure": guidance.disclosure})
    return res.metrics, guidance


def animate(cfg: AnimateConfig, ctx: Any) -> dict[str, float]:
    index = letter_index(cfg.word, cfg.letter)
    metrics, guidance = animate_letter(cfg.word, index, cfg.prompt, cfg, ctx, ctx.out)
    ctx.log.info("base IoU %.3f  SSIM %.3f  motion %.3f  conformal %.2e  (%s)", metrics["iou"], metrics["ssim"],
                 metrics["motion"], metrics["conformal"], guidance.disclosure)
    return {**metrics, "guidance_is_local": float(guidance.name != "sds")}


def render(cfg: RenderConfig, ctx: Any) -> dict[str, float]:
    import re

    from .outputs import encode, read_svg_frames, svg_to_array

    files = read_svg_frames(cfg.frames, cfg.pattern)
    images = []
    for name, data in ctx.progress(files, description="render"):
        size = None
        if cfg.height:
            m = re.search(rb'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', data)
            w_over_h = float(m.group(1)) / float(m.group(2)) if m else 1.0
            size = (2 * round(cfg.height * w_over_h / 2), 2 * round(cfg.height / 2))
        images.append(svg_to_array(data, name, size))
    note = cfg.title
    if not note:
        m = re.search(rb"<!--(.*?)-->", files[0][1], re.S)
        note = m.group(1).decode(errors="replace").strip() if m else Path(cfg.frames).name
    encode(ctx.out, images, note, cfg.fps)
    return {"frames": float(len(images)), "height": float(images[0].shape[0]), "width": float(images[0].shape[1])}
