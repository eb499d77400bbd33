"""Tasks `convert`, `finetune` and `evaluate` (the demo lives in demo.py)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from paperloom_lm.data import check_vocab, load_tokenizer, pack, read_corpus, text_data, use_folder_tokenizer
from paperloom_lm.hf import save_hf

from paperloom import UserError
from paperloom.context import is_main_process, looks_like_path

from .synthetic import passkey_batch, vocab_size

__all__ = ["convert", "evaluate", "finetune"]


def _wrap(ctx: Any, cfg: Any, vocab: int | None = None) -> Any:
    base_args = {} if looks_like_path(cfg.base) else cfg.base_args
    return ctx.build("fam:wrap", base=cfg.base, base_args=base_args,
                     vocab_size=None if looks_like_path(cfg.base) else vocab, **dataclasses.asdict(cfg.fam))


def _empty_out(path: Path) -> Path:
    if path.exists() and any(path.iterdir()):
        raise UserError(f"out = {path} is not empty; give an empty or new folder")
    return path


def params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def convert(cfg: Any, ctx: Any) -> dict[str, float]:
    """Wrap `cfg.base` as BSWA/FAM (weights unchanged) and save it with its tokenizer, if the folder has one."""
    out = _empty_out(Path(cfg.out).expanduser() if cfg.out else ctx.out / "model")
    model = _wrap(ctx, cfg)
    tokenizer = None
    if looks_like_path(cfg.base) and (Path(cfg.base).expanduser() / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(cfg.base)
    save_hf(model, out, tokenizer)
    prompt = model.fam_prompt.numel() if model.fam_prompt is not None else 0
    ctx.log.info(f"{type(model.base).__name__} as FAM (block {cfg.fam.block_size}, mem {cfg.fam.mem_segments}, "
                 f"FAM {cfg.fam.fam_len}): {params(model):,} parameters ({prompt:,} new) -> {out}")
    return {"params": params(model), "base_params": params(model.base), "fam_prompt_params": prompt}


def finetune(cfg: Any, ctx: Any) -> dict[str, float]:
    """Fine-tune as FAM on long packed sequences (data.block_size tokens each) with Lightning."""
    from paperloom_lm.causal_lm import evaluate_lm, loaders

    from paperloom.training import fit, make_trainer

    from .finetune import FAMModule, add_lora, merge_lora

    use_folder_tokenizer(cfg.data, cfg.base)
    tokenizer, train, val = text_data(cfg.data, ctx.out, ctx.seed)
    model = _wrap(ctx, cfg, len(tokenizer))
    check_vocab(model, tokenizer, cfg.base)
    ctx.log.info(f"data: {len(train)} train / {len(val)} val sequences of {cfg.data.block_size} tokens "
                 f"({math.ceil(cfg.data.block_size / cfg.fam.block_size)} blocks of {cfg.fam.block_size})")
    t = cfg.trainer
    init = evaluate_lm(model, val, t.batch_size)
    trained = add_lora(model, cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.targets) \
        if cfg.lora.rank else model
    module = FAMModule(trained, cfg.optim, t.max_steps, cfg.state_passing, cfg.max_position_offset, ctx.seed)
    trainer = make_trainer(ctx, t)
    train_dl, val_dl = loaders(train, val, t.batch_size, ctx.seed, t.num_workers)
    fit(ctx, trainer, module, train_dl, val_dl)
    if not trainer.is_global_zero:
        return {}
    model = merge_lora(trained).cpu()
    final = evaluate_lm(model, val, t.batch_size)
    trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    if cfg.export and is_main_process():
        save_hf(model, ctx.out / "model", tokenizer)
    ctx.log.info(f"val loss {init['val_loss']:.3f} -> {final['val_loss']:.3f} after {trainer.global_step} steps "
                 f"({trainable:,} trainable parameters{', LoRA' if cfg.lora.rank else ''})")
    return {"init_val_loss": init["val_loss"], **final, "steps": trainer.global_step, "trainable_params": trainable}


TEXT_FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


def text_passkey(tokenizer: Any, length: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Natural-language passkey (the paper's PassKey format): a 5-digit key at the start, filler, then the
    question; -> ids (n, length) ending with the key's tokens, and the number of key tokens per row."""
    rows, n_key = [], []
    filler = tokenizer(TEXT_FILLER, add_special_tokens=False)["input_ids"]
    for _ in range(n):
        key = str(int(torch.randint(10000, 100000, (1,), generator=gen)))
        head = tokenizer(f"There is a pass key hidden in this text. The pass key is {key}. Remember it. ",
                         add_special_tokens=False)["input_ids"]
        tail = tokenizer(" What is the pass key? The pass key is", add_special_tokens=False)["input_ids"]
        answer = tokenizer(f" {key}", add_special_tokens=False)["input_ids"]
        room = length - len(head) - len(tail) - len(answer)
        if room < 0:
            raise UserError(f"lengths: {length} tokens cannot hold the text passkey ({length - room} tokens); "
                            "use longer lengths")
        body = (filler * (room // max(1, len(filler)) + 1))[:room]
        rows.append(head + body + tail + answer)
        n_key.append(len(answer))
    return torch.tensor(rows), torch.tensor(n_key)  # every row is `length` tokens; keys may differ in tokens


@torch.no_grad()
def passkey_scores(model: Any, cfg: Any, tokenizer: Any) -> dict[str, float]:
    out = {}
    for n in cfg.lengths:
        gen = torch.Generator().manual_seed(10_000 + n)
        if cfg.passkey == "tokens":
            b = passkey_batch(cfg.samples, n, cfg.n_values, cfg.n_filler, cfg.key_within, gen)
            ids, nk = b["input_ids"], torch.ones(cfg.samples, dtype=torch.long)
        else:
            ids, nk = text_passkey(tokenizer, n, cfg.samples, gen)
        hits = 0
        for i in range(0, len(ids), cfg.batch_size):
            chunk = ids[i:i + cfg.batch_size]
            pred = model(input_ids=chunk).logits.argmax(-1)  # teacher-forced greedy: every key token right
            for row, k in zip(range(len(chunk)), nk[i:i + cfg.batch_size].tolist()):
                hits += int(torch.equal(pred[row, -k - 1:-1], chunk[row, -k:]))
        out[f"passkey_acc_len{n}"] = hits / len(ids)
    return out


@torch.no_grad()
def loss_by_position(model: Any, stream: torch.Tensor, length: int, buckets: int, batch_size: int) -> dict:
    """Mean next-token loss in `buckets` equal position ranges of `length`-token sequences cut from `stream`."""
    rows = stream[: stream.numel() // length * length].view(-1, length)
    if len(rows) == 0:
        raise UserError(f"loss_length = {length}: the text has only {stream.numel()} tokens; lower it or add text")
    total = torch.zeros(length - 1, dtype=torch.float64)
    for i in range(0, len(rows), batch_size):
        ids = rows[i:i + batch_size]
        logits = model(input_ids=ids).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        total += nll.double().sum(0)
    per = total / len(rows)
    edges = torch.linspace(0, length - 1, buckets + 1).long()
    return {f"loss_pos{int(a)}_{int(b)}": float(per[a:b].mean()) for a, b in zip(edges[:-1], edges[1:]) if b > a}


def evaluate(cfg: Any, ctx: Any) -> dict[str, float]:
    """Passkey accuracy by length (tokens or text) and the loss by position bucket on long text sequences."""
    tokenizer = None
    need_text = cfg.passkey == "text" or cfg.loss_length
    if need_text:
        use_folder_tokenizer(cfg.data, cfg.model)
        if not cfg.data.tokenizer and looks_like_path(cfg.model):
            raise UserError(f"model = {cfg.model!r} holds no tokenizer; set data.tokenizer to its tokenizer folder")
    texts = read_corpus(cfg.data.source, cfg.data.max_chars) if cfg.loss_length else None
    if need_text:
        tokenizer = load_tokenizer(cfg.data.tokenizer) if cfg.data.tokenizer else text_data(cfg.data, ctx.out)[0]
    vocab = len(tokenizer) if tokenizer is not None else vocab_size(cfg.n_values, cfg.n_filler)
    args = dict(cfg.model_args)
    model = ctx.build(cfg.model) if looks_like_path(cfg.model) else ctx.build(cfg.model, vocab_size=vocab, **args)
    if type(model).__name__ != "FAMForCausalLM":
        raise UserError(f"model = {cfg.model!r} is not a FAM model; use fam:wrap (model_args.base=...) or a folder "
                        "saved by fam:convert / fam:finetune")
    model.eval()
    metrics: dict[str, float] = {}
    if cfg.passkey != "off":
        if cfg.passkey == "tokens" and model.get_input_embeddings().num_embeddings < vocab:
            raise UserError(f"passkey = tokens needs {vocab} token ids; the model has "
                            f"{model.get_input_embeddings().num_embeddings}: lower n_values/n_filler or use text")
        metrics.update(passkey_scores(model, cfg, tokenizer))
    if cfg.loss_length:
        check_vocab(model, tokenizer, cfg.model)
        stream = pack(texts, tokenizer, 1).view(-1)
        metrics.update(loss_by_position(model, stream, cfg.loss_length, cfg.buckets, cfg.batch_size))
    for k, v in sorted(metrics.items()):
        ctx.log.info(f"{k:>24}: {v:.4f}")
    return metrics
