"""Builders of every component plugin.py names, ``builder(ctx, **kwargs)``: the CLIP models (random init from a
model config, or a checkpoint folder), the pairs dataset and the three evaluators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paperloom import UserError

from .model import CLIP, build_clip, load_clip, read_spec


def default_tokenizer(vocab_size: int = 256) -> Any:
    """A BPE on generated captions, for a model built without a tokenizer (tests, `core check`)."""
    from .synthetic import make_pairs
    from .tokenizer import train_tokenizer

    return train_tokenizer(make_pairs(200, 8, seed=0)["texts"], vocab_size)


def build_model(ctx: Any, arch: str | dict = "ViT-Ti-4", tokenizer: Any = None, vision: dict | None = None,
                text: dict | None = None, embed_dim: int = 0, path: str = "") -> CLIP:
    """A random-init CLIP of `arch` (model_configs/<arch>.json, a JSON path or a dict), its `vision` / `text`
    entries overridden; with `path`, the checkpoint folder instead."""
    if path:
        return load_clip(path)
    spec = read_spec(arch)
    spec["vision"].update(vision or {})
    spec["text"].update(text or {})
    if embed_dim:
        spec["embed_dim"] = embed_dim
    if spec["vision"].get("type") not in ("vit", "resnet"):
        raise UserError(f"model arch {arch}: vision.type must be 'vit' or 'resnet', not {spec['vision'].get('type')!r}")
    return build_clip(spec, tokenizer if tokenizer is not None else default_tokenizer())


def build_pretrained(ctx: Any, path: str = "") -> CLIP:
    """A CLIP checkpoint folder: HF CLIPModel (openai/clip-vit-* copied locally, or ours) or a saved ResNet CLIP."""
    if not path:
        raise UserError("clip:pretrained needs path=FOLDER (a CLIP checkpoint folder)")
    return load_clip(path)


def build_pairs(ctx: Any, path: str = "", format: str = "auto", image_root: str = "", img_key: str = "filepath",
                caption_key: str = "title", image_size: int = 32, limit: int = 0, train: bool = False) -> Any:
    """Image-text pairs from a CSV/TSV captions file, a JSONL file or webdataset shards (data.DataConfig)."""
    from .data import open_pairs

    return open_pairs(path, format, image_root, img_key, caption_key, image_size, limit, train)


def build_zero_shot(ctx: Any, folder: str = "", templates: Sequence[str] = ("a photo of a {}.",),
                    batch_size: int = 64) -> Any:
    """evaluate(model, data, ctx): zero-shot top-1/top-5 on an ImageFolder layout (`folder`, or `data` given as
    (dataset, classnames))."""
    from .data import image_folder
    from .evaluate import zero_shot

    def evaluate(model: Any, data: Any, ctx: Any) -> dict[str, float]:
        images, names = data if data is not None else image_folder(folder, model.image_size)
        return zero_shot(model, images, None, names, list(templates), batch_size)

    return evaluate


def build_retrieval(ctx: Any, batch_size: int = 64) -> Any:
    """evaluate(model, pairs, ctx): image->text and text->image R@1/5/10 on an image-text-pairs dataset."""
    from .evaluate import retrieval

    return lambda model, data, ctx: retrieval(model, data, batch_size)


def build_linear_probe(ctx: Any, train: str = "", test: str = "", c: float = 1.0, batch_size: int = 64) -> Any:
    """evaluate(model, data, ctx): logistic regression on frozen features, trained on the ImageFolder `train`,
    scored on `test` (or `data` given as (train dataset, test dataset))."""
    from .data import image_folder
    from .evaluate import linear_probe

    def evaluate(model: Any, data: Any, ctx: Any) -> dict[str, float]:
        if data is None:
            if not train or not test:
                raise UserError("clip:linear-probe needs train= and test= ImageFolder folders")
            data = image_folder(train, model.image_size)[0], image_folder(test, model.image_size)[0]
        return linear_probe(model, data[0], data[1], c, batch_size)

    return evaluate
