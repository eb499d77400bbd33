"""`lm:pretrain` (the one pre-training recipe as a task) and `lm:evaluate`."""

from __future__ import annotations

from typing import Any

from paperloom import UserError
from paperloom.context import looks_like_path

from .causal_lm import cut, loss_by_length
from .data import check_vocab, load_tokenizer, pack, read_corpus, text_data, train_tokenizer, use_folder_tokenizer
from .hf import save_hf
from .pretrain import pretrain as run_pretrain


def build_model(ctx: Any, ref: str, model_args: dict, tokenizer: Any) -> Any:
    """A folder loads as saved; a component is built with the tokenizer's vocabulary."""
    model = ctx.build(ref) if looks_like_path(ref) else ctx.build(ref, vocab_size=len(tokenizer), **model_args)
    check_vocab(model, tokenizer, ref)
    return model


def pretrain(cfg: Any, ctx: Any) -> dict[str, float]:
    use_folder_tokenizer(cfg.data, cfg.model)
    tokenizer, train, val = text_data(cfg.data, ctx.out, ctx.seed)
    block = cfg.data.block_size
    ctx.log.info(f"data: {len(train)} train blocks ({len(train) * block:,} tokens) / {len(val)} val blocks of "
                 f"{block}, vocab {len(tokenizer)}")
    model = build_model(ctx, cfg.model, cfg.model_args, tokenizer)
    result = run_pretrain(model, train, val, cfg.optim, cfg.trainer, ctx, cfg.token_budget)
    if not result.pop("is_global_zero"):
        return {}
    metrics = {**result, "train_tokens": len(train) * block, "params": sum(p.numel() for p in model.parameters())}
    if cfg.eval_lengths:
        metrics.update(loss_by_length(model, val.rows.reshape(-1), cfg.eval_lengths, cfg.trainer.batch_size, "cpu"))
    if cfg.export:
        save_hf(model, ctx.out / "model", tokenizer)
    ctx.log.info(f"val loss {result['init_val_loss']:.3f} -> {result['val_loss']:.3f} (ppl {result['val_ppl']:.1f}) "
                 f"after {result['steps']} steps / {result['tokens']:,} tokens")
    return metrics


def evaluate(cfg: Any, ctx: Any) -> dict[str, float]:
    data = cfg.data
    use_folder_tokenizer(data, cfg.model)
    if cfg.split == "val":
        if cfg.context_lengths and cfg.context_lengths != [data.block_size]:
            raise UserError("config: split = 'val' evaluates pretrain's held-out blocks at data.block_size; use "
                            "split=tail for other context_lengths")
        tokenizer, _, held = text_data(data, ctx.out, ctx.seed)
        sets = {data.block_size: held}
    else:
        texts = read_corpus(data.source, data.max_chars)
        if data.tokenizer:
            tokenizer = load_tokenizer(data.tokenizer)
        elif looks_like_path(cfg.model):
            raise UserError(f"model = {cfg.model!r} holds no tokenizer; set data.tokenizer to the tokenizer folder "
                            "the model was trained with")
        else:
            tokenizer = train_tokenizer(texts, data.vocab_size, ctx.out / "tokenizer")
        stream = pack(texts, tokenizer, 1).view(-1)
        if cfg.split == "tail":
            stream = stream[int(len(stream) * (1 - data.val_fraction)):]
        lengths = cfg.context_lengths or [data.block_size]
        sets = {n: cut(stream, n, cfg.max_tokens, tokenizer) for n in lengths}
        ctx.log.info(f"evaluating {len(stream):,} tokens ({cfg.split}) of {data.source} at context {lengths}")
    model = build_model(ctx, cfg.model, cfg.model_args, tokenizer).to(ctx.device)
    metrics: dict[str, float] = {}
    for name in cfg.evaluators:
        evaluator = ctx.build(name, **cfg.evaluator_args.get(name, {}))
        for length, blocks in sets.items():
            suffix = f"_ctx{length}" if len(sets) > 1 else ""
            metrics.update({f"{k}{suffix}": v for k, v in evaluator(model, blocks, ctx).items()})
    for k, v in sorted(metrics.items()):
        ctx.log.info(f"{k:>24}: {v:.4f}")
    return metrics
