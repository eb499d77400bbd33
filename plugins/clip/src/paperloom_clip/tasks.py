"""Task functions fn(cfg, ctx) -> metrics: train, filter, evaluate (the demo is demo.py), and `train_clip`, the
one training recipe every task and the demo use."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from paperloom import UserError
from paperloom.context import is_main_process, looks_like_path
from paperloom.io import atomic_write_json, atomic_write_text


def build_model(ctx: Any, ref: str, **kwargs: Any) -> Any:
    """A model component by name, or a checkpoint folder loaded by clip:pretrained (whatever else is installed)."""
    if not ref:
        raise UserError("no model given; set model= a CLIP checkpoint folder or a component (clip:model)")
    if looks_like_path(ref):
        if not Path(ref).is_dir():
            raise UserError(f"model folder {ref} does not exist; give a CLIP checkpoint folder")
        return ctx.build("clip:pretrained", path=ref)  # not ctx.build(ref): that takes the first folder loader
    return ctx.build(ref, **kwargs)


def loader(model: Any, data: Any, s: Any, batch_size: int, seed: int, num_workers: int = 0) -> Any:
    """The training DataLoader of strategy `s`: per-image views in the workers, tokenized captions."""
    from paperloom.training import shuffled_loader

    from .augment import Collate, clip_view, simclr_view, strong_view

    size = model.image_size
    view = strong_view(size, s.aug) if s.name == "dataaug" else clip_view(size, s.base_crop_min)
    collate = Collate(model.tokenizer, model.context_length, view, simclr_view(size, s.ssl_crop_min)
                      if s.name == "slip" else None)
    from .data import length

    if length(data) is not None:
        if len(data) < 2:
            raise UserError(f"the training data has {len(data)} pair(s); contrastive training needs at least 2")
        return shuffled_loader(data, min(batch_size, len(data)), seed, num_workers, collate_fn=collate)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)


def train_clip(model: Any, data: Any, s: Any, optim: Any, trainer_cfg: Any, ctx: Any) -> dict[str, Any]:
    """Train `model` on `data` with strategy `s` (Lightning through the core adapter; resumes under --resume)."""
    from paperloom.training import fit, make_trainer

    from .strategies import ContrastiveModule

    if s.name == "flip" and not model.is_vit:
        raise UserError("strategy.name=flip drops ViT patch tokens; the model has a ResNet image tower (use a ViT "
                        "arch or another strategy)")
    module = ContrastiveModule(model, s, optim, trainer_cfg.max_steps)
    trainer = make_trainer(ctx, trainer_cfg)
    fit(ctx, trainer, module, loader(model, data, s, trainer_cfg.batch_size, ctx.seed, trainer_cfg.num_workers))
    m = trainer.callback_metrics
    return {"train_loss": float(m["train_loss"]) if "train_loss" in m else float("nan"),
            "steps": int(trainer.global_step), "is_global_zero": trainer.is_global_zero}


def data_texts(data: Any) -> list[str]:
    if hasattr(data, "texts"):
        return list(data.texts)
    from .data import shard_texts

    return shard_texts(data.urls)


def train(cfg: Any, ctx: Any) -> dict[str, float]:
    from .tokenizer import load_tokenizer, train_tokenizer

    if looks_like_path(cfg.model):  # continue from a checkpoint: its tokenizer and image size
        model = build_model(ctx, cfg.model)
    else:
        tok = cfg.tokenizer
        if tok == "train":  # a BPE on the captions (read without images)
            tok = train_tokenizer(data_texts(ctx.build(cfg.dataset, **asdict(cfg.data))), cfg.vocab_size)
        else:
            tok = load_tokenizer(tok)
        model = build_model(ctx, cfg.model, tokenizer=tok, **cfg.model_args)
    data = ctx.build(cfg.dataset, **{**asdict(cfg.data), "image_size": cfg.data.image_size or model.image_size,
                                     "train": True})
    result = train_clip(model, data, cfg.strategy, cfg.optim, cfg.trainer, ctx)
    if not result.pop("is_global_zero") or not is_main_process():
        return {}
    model.save(ctx.out / "model")
    ctx.log.info(f"trained {result['steps']} steps ({cfg.strategy.name}); final train loss {result['train_loss']:.4f};"
                 f" model saved to {ctx.out / 'model'}")
    return result


def filter(cfg: Any, ctx: Any) -> dict[str, float]:
    from .filtering import histogram, keep_top, score_pairs

    model = build_model(ctx, cfg.scorer, **cfg.scorer_args).to(ctx.device)
    data = ctx.build(cfg.dataset, **{**asdict(cfg.data), "image_size": cfg.data.image_size or model.image_size})
    records, scores = score_pairs(model, data, cfg.batch_size, ctx.progress, chunk_batches=cfg.span_batches,
                                  imap=functools.partial(ctx.imap, workers=cfg.processes))
    if not records:
        raise UserError(f"data.path {cfg.data.path}: no pairs to score")
    kept = keep_top(scores, cfg.keep_fraction)
    threshold = min(scores[i] for i in kept)
    lines = [json.dumps({**records[i], "score": scores[i], "filepath": records[i].get("path"),
                         "title": records[i]["text"]}) + "\n" for i in kept]
    atomic_write_text(ctx.out / "kept.jsonl", "".join(lines))  # readable back as data.path (JSONL) for files
    atomic_write_text(ctx.out / "scores.jsonl", "".join(json.dumps({**r, "score": s}) + "\n"
                                                         for r, s in zip(records, scores)))
    if cfg.write_shards and "url" in records[0]:
        write_kept_shards([records[i] for i in kept], ctx.out / "shards")
    histogram(scores, threshold, cfg.bins, ctx.out / "scores.png",
              f"{len(kept)} of {len(scores)} pairs kept (top {100 * cfg.keep_fraction:.0f}%)")
    ctx.log.info(f"kept {len(kept)} of {len(scores)} pairs (score >= {threshold:.4f}): {ctx.out / 'kept.jsonl'}")
    return {"pairs": len(scores), "kept": len(kept), "threshold": threshold,
            "mean_score": sum(scores) / len(scores), "mean_kept_score": sum(scores[i] for i in kept) / len(kept)}


def write_kept_shards(kept: list[dict], folder: Path, per_shard: int = 1000) -> None:
    """Copy the kept samples' members (every extension of each key) from their shards into new shards
    (filtered-000000.tar, ...), each written to a temporary name and renamed when complete."""
    import re
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    want: dict[str, set] = {}
    for r in kept:
        want.setdefault(r["url"], set()).add(r["key"])
    out, tmp, in_shard, count = None, None, set(), 0

    def close() -> None:
        if out is not None:
            out.close()
            tmp.replace(tmp.with_name(tmp.name[1:].removesuffix(".tmp")))

    for url, keys in want.items():
        with tarfile.open(url) as src:
            for m in src:
                match = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", m.name)  # webdataset's key.extension split
                if not m.isfile() or not match or match.group(1) not in keys:
                    continue
                if out is None or (match.group(1) not in in_shard and len(in_shard) >= per_shard):
                    close()
                    tmp = folder / f".filtered-{count:06d}.tar.tmp"
                    out, in_shard, count = tarfile.open(tmp, "w"), set(), count + 1
                in_shard.add(match.group(1))
                out.addfile(m, src.extractfile(m))
    close()


def evaluate(cfg: Any, ctx: Any) -> dict[str, float]:
    from .data import image_folder
    from .evaluate import linear_probe, retrieval, zero_shot

    model = build_model(ctx, cfg.model, **cfg.model_args).to(ctx.device)
    size = model.image_size
    out: dict[str, float] = {}
    if cfg.zero_shot:
        images, names = image_folder(cfg.zero_shot, size)
        out.update(zero_shot(model, images, None, names, cfg.templates, cfg.batch_size))
    if cfg.retrieval.path:
        pairs = ctx.build(cfg.dataset, **{**asdict(cfg.retrieval), "image_size": cfg.retrieval.image_size or size})
        out.update(retrieval(model, pairs, cfg.batch_size))
    if cfg.probe_train or cfg.probe_test:
        if not (cfg.probe_train and cfg.probe_test):
            raise UserError("linear probe: set both probe_train and probe_test (ImageFolder layouts)")
        out.update(linear_probe(model, image_folder(cfg.probe_train, size)[0], image_folder(cfg.probe_test, size)[0],
                                cfg.probe_c, cfg.batch_size))
    if not out:
        raise UserError("nothing to evaluate: set zero_shot=FOLDER, retrieval.path=FILE and/or probe_train/probe_test")
    atomic_write_json(ctx.out / "evaluation.json", out)
    ctx.log.info("\n".join(f"  {k:<24} {v:.4f}" for k, v in out.items()))
    return out
