"""The built-in `core:train-lm` task: pre-train any causal-LM component on text with Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .lm import CausalLMModule, evaluate_lm, loaders, save_hf, text_data
from .run import is_main_process, looks_like_path
from .training import fit, make_trainer


def train_lm(cfg: Any, ctx: Any) -> dict:
    data = cfg.data
    if not data.tokenizer and looks_like_path(cfg.model) and (Path(cfg.model) / "tokenizer.json").is_file():
        data.tokenizer = cfg.model  # a checkpoint folder brings its own tokenizer
    tokenizer, train, val = text_data(data, ctx.out if is_main_process() else None, ctx.seed)
    ctx.log.info(
        f"data: {len(train)} train / {len(val)} val blocks of {data.block_size} tokens, vocab {len(tokenizer)}"
    )
    model = ctx.build(cfg.model, vocab_size=len(tokenizer), **cfg.model_args)
    init = evaluate_lm(model, val)
    ctx.save_metrics({"init_val_loss": init["val_loss"]})
    module = CausalLMModule(model, cfg.optim, cfg.trainer.max_steps)
    trainer = make_trainer(ctx, cfg.trainer)
    train_dl, val_dl = loaders(train, val, cfg.trainer.batch_size, ctx.seed, cfg.trainer.num_workers)
    fit(ctx, trainer, module, train_dl, val_dl)
    if not trainer.is_global_zero:
        return {}
    final = evaluate_lm(model, val)
    if cfg.export:
        save_hf(model, ctx.out / "model", tokenizer)
    ctx.log.info(f"val loss {init['val_loss']:.3f} -> {final['val_loss']:.3f} (ppl {final['val_ppl']:.1f})")
    return {
        **final,
        "init_val_loss": init["val_loss"],
        "steps": trainer.global_step,
        "params": sum(p.numel() for p in model.parameters()),
    }
