"""`megalodon:pretrain` and `megalodon:evaluate`: Lightning pre-training and loss-by-context-length.

Both reuse the core's causal-LM helpers (`paperloom.lm`, `paperloom.training`), so any text the core
reads works, checkpoints land in `checkpoints/last.ckpt` and `--resume` continues a killed run.
Sequences longer than the model's chunk are split into chunks inside the model (attention cost stays
linear in length); CEMA and timestep norm carry context across the chunks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from paperloom.errors import UserError
from paperloom.lm import (
    Blocks,
    CausalLMModule,
    evaluate_lm,
    load_tokenizer,
    loaders,
    pack,
    read_corpus,
    save_hf,
    text_data,
    train_tokenizer,
)
from paperloom.run import looks_like_path
from paperloom.training import fit, make_trainer

from . import modeling  # noqa: F401  (registers the megalodon model type with the Auto classes)


def steps_for_budget(tokens: int, batch_size: int, block_size: int, accumulate: int = 1, devices: int = 1) -> int:
    """Optimizer steps that consume `tokens` training tokens (at least 1)."""
    per_step = batch_size * block_size * max(1, accumulate) * max(1, devices)
    return max(1, math.ceil(tokens / per_step))


def loss_by_length(model: torch.nn.Module, stream: torch.Tensor, lengths: list[int], batch_size: int, device: str,
                   max_tokens: int = 0) -> dict[str, float]:
    """Token-weighted val loss / perplexity when the token stream is cut into sequences of each length."""
    out: dict[str, float] = {}
    for length in lengths:
        if length < 2:
            raise UserError(f"context length {length} is too short; use lengths >= 2")
        n = stream.numel() // length
        if max_tokens:
            n = min(n, max(1, max_tokens // length))
        if n == 0:
            raise UserError(f"the evaluation text has {stream.numel()} tokens, fewer than one sequence of {length}; "
                            "add text or lower the context length")
        res = evaluate_lm(model, Blocks(stream[: n * length].view(n, length)), batch_size, device=device)
        out[f"val_loss_ctx{length}"], out[f"val_ppl_ctx{length}"] = res["val_loss"], res["val_ppl"]
    return out


def pretrain(cfg: Any, ctx: Any) -> dict[str, float]:
    data = cfg.data
    if not data.tokenizer and looks_like_path(cfg.model) and (Path(cfg.model) / "tokenizer.json").is_file():
        data.tokenizer = cfg.model  # a checkpoint folder brings its own tokenizer
    tokenizer, train, val = text_data(data, ctx.out, ctx.seed)
    t = cfg.trainer
    if cfg.token_budget:
        t.max_steps = steps_for_budget(cfg.token_budget, t.batch_size, data.block_size, t.accumulate_grad_batches,
                                       t.devices)
        ctx.log.info(f"token budget {cfg.token_budget:,} -> {t.max_steps} steps of "
                     f"{t.batch_size}x{data.block_size} tokens")
    ctx.log.info(f"data: {len(train)} train / {len(val)} val blocks of {data.block_size} tokens, "
                 f"vocab {len(tokenizer)}")
    model = ctx.build(cfg.model, vocab_size=len(tokenizer), **cfg.model_args)
    chunk = getattr(model.config, "chunk_size", None)
    if chunk:
        ctx.log.info(f"model: {sum(p.numel() for p in model.parameters()):,} params, chunk {chunk} "
                     f"({math.ceil(data.block_size / chunk)} chunk(s) per sequence)")
    init = evaluate_lm(model, val, t.batch_size)
    ctx.save_metrics({"init_val_loss": init["val_loss"]})
    module = CausalLMModule(model, cfg.optim, t.max_steps)
    trainer = make_trainer(ctx, t)
    train_dl, val_dl = loaders(train, val, t.batch_size, ctx.seed, t.num_workers)
    fit(ctx, trainer, module, train_dl, val_dl)
    if not trainer.is_global_zero:
        return {}
    model.cpu()
    final = evaluate_lm(model, val, t.batch_size)
    metrics = {**final, "init_val_loss": init["val_loss"], "steps": trainer.global_step,
               "tokens": trainer.global_step * t.batch_size * data.block_size * t.accumulate_grad_batches,
               "params": sum(p.numel() for p in model.parameters())}
    if cfg.eval_lengths:
        metrics.update(loss_by_length(model, val.rows.reshape(-1), cfg.eval_lengths, t.batch_size, "cpu"))
    if cfg.export:
        save_hf(model, ctx.out / "model", tokenizer)
        ctx.log.info(f"saved {ctx.out / 'model'} (load with AutoModelForCausalLM.from_pretrained after importing "
                     "paperloom_megalodon)")
    ctx.log.info(f"val loss {init['val_loss']:.3f} -> {final['val_loss']:.3f} (ppl {final['val_ppl']:.1f})")
    return metrics


def evaluate(cfg: Any, ctx: Any) -> dict[str, float]:
    data = cfg.data
    folder = looks_like_path(cfg.model)
    if not data.tokenizer and folder and (Path(cfg.model) / "tokenizer.json").is_file():
        data.tokenizer = cfg.model
    texts = read_corpus(data.source, data.max_chars)
    if data.tokenizer:
        tokenizer = load_tokenizer(data.tokenizer)
    elif folder:
        raise UserError(f"model = {cfg.model!r} holds no tokenizer.json; set data.tokenizer to the tokenizer folder "
                        "the model was trained with")
    else:
        tokenizer = train_tokenizer(texts, data.vocab_size, ctx.out / "tokenizer")
    model = ctx.build(cfg.model, vocab_size=len(tokenizer)).to(ctx.device)
    stream = pack(texts, tokenizer, 1).view(-1)
    held = stream[int(len(stream) * (1 - data.val_fraction)):] if data.val_fraction < 1 else stream
    ctx.log.info(f"evaluating on the last {len(held):,} tokens ({data.val_fraction:.0%}) of {data.source}")
    metrics = loss_by_length(model, held, list(cfg.context_lengths), cfg.batch_size, ctx.device, cfg.max_tokens)
    for length in cfg.context_lengths:
        ctx.log.info(f"context {length:>6}: val loss {metrics[f'val_loss_ctx{length}']:.4f} "
                     f"ppl {metrics[f'val_ppl_ctx{length}']:.2f}")
    return metrics
