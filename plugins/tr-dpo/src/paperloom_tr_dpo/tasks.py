"""The `sft`, `align` and `evaluate` tasks (``fn(cfg, ctx) -> metrics``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from paperloom import UserError  # noqa: E402
from paperloom.lm import load_tokenizer, save_hf, train_tokenizer  # noqa: E402
from paperloom.run import looks_like_path  # noqa: E402

from . import data as D  # noqa: E402
from .trainer import MetricsToRun, align_trainer, quiet, train, trl_args  # noqa: E402


def load_data(ctx: Any, ref: str, args: dict) -> Any:
    try:
        return ctx.build(ref, **args)
    except TypeError as exc:  # an unknown keyword in data_args
        raise UserError(f"config: data_args {args} do not fit dataset {ref}: {exc}") from None


def policy_and_tokenizer(ctx: Any, policy: str, policy_args: dict, tokenizer: str, vocab_size: int,
                         ds: Any = None) -> tuple[Any, Any]:
    """Build the policy; its tokenizer comes from `tokenizer`, the checkpoint folder, or is trained on the data."""
    if tokenizer:
        tok = load_tokenizer(tokenizer)
    elif looks_like_path(policy) and (Path(policy).expanduser() / "tokenizer_config.json").is_file():
        tok = load_tokenizer(policy)
    elif looks_like_path(policy):
        raise UserError(f"{policy} holds no tokenizer; set tokenizer=/path/to/tokenizer-folder")
    else:
        if ds is None:
            raise UserError(f"policy = {policy!r} is a new model; give tokenizer= (a folder) to go with it")
        tok = train_tokenizer(D.texts(ds), vocab_size, ctx.out / "tokenizer")
        ctx.log.info(f"trained a {len(tok)}-token BPE tokenizer on the data -> {ctx.out / 'tokenizer'}")
    args = dict(policy_args)
    if not looks_like_path(policy):
        args.setdefault("vocab_size", len(tok))
    model = ctx.build(policy, **args)
    n_emb = model.get_input_embeddings().num_embeddings
    if n_emb < len(tok):
        raise UserError(f"policy {policy}: {n_emb} embeddings but the tokenizer has {len(tok)} tokens; use the "
                        "tokenizer saved with the model")
    if ctx.device != "cpu":
        model.to(ctx.device)
    return model, tok


def sft(cfg: Any, ctx: Any) -> dict:
    """Supervised warm-up on the chosen responses (trl SFTTrainer, completion-only loss)."""
    from datasets.utils.logging import disable_progress_bar
    from trl import SFTTrainer

    disable_progress_bar()
    ds = load_data(ctx, cfg.data, cfg.data_args)
    model, tok = policy_and_tokenizer(ctx, cfg.policy, cfg.policy_args, cfg.tokenizer, cfg.vocab_size, ds)
    rows = D.sft_rows(ds)
    ctx.log.info(f"SFT on {len(rows)} (prompt, chosen) rows, {cfg.train.steps} steps")
    args = trl_args("sft", ctx.out / "trainer", cfg.train, ctx.device, ctx.seed, completion_only_loss=True)
    trainer = quiet(SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tok,
                               callbacks=[MetricsToRun(ctx.log_metrics, "sft_")]))
    metrics = train(trainer, ctx.resume)
    if trainer.is_world_process_zero():
        save_hf(trainer.model, ctx.out / "model", tok)
        ctx.log.info(f"SFT policy -> {ctx.out / 'model'}")
    return {"sft_loss": metrics["train_loss"], "steps": metrics["steps"]}


def align(cfg: Any, ctx: Any) -> dict:
    """DPO / IPO / KTO with the chosen reference update; the aligned policy is saved to model/."""
    ds = load_data(ctx, cfg.data, cfg.data_args)
    model, tok = policy_and_tokenizer(ctx, cfg.policy, cfg.policy_args, cfg.tokenizer, cfg.vocab_size, ds)
    r = cfg.ref
    name = ("tr-" if r.update != "none" else "") + cfg.loss
    ctx.log.info(f"{name} ({r.update}, alpha={r.alpha}, tau={r.tau}, beta={cfg.beta}) on {len(ds)} rows, "
                 f"{cfg.train.steps} steps")
    trainer = align_trainer(model, tok, ds, loss=cfg.loss, beta=cfg.beta, update=r.update, alpha=r.alpha, tau=r.tau,
                            train=cfg.train, out_dir=ctx.out / "trainer", device=ctx.device, seed=ctx.seed,
                            callbacks=(MetricsToRun(ctx.log_metrics),),
                            precompute_ref_log_probs=cfg.precompute_ref_log_probs)
    metrics = train(trainer, ctx.resume)
    if trainer.is_world_process_zero():
        save_hf(trainer.model, ctx.out / "model", tok)
        ctx.log.info(f"aligned policy -> {ctx.out / 'model'}")
    last = next((h for h in reversed(trainer.state.log_history) if "rewards/margins" in h), {})
    out = {"align_loss": metrics["train_loss"], "steps": metrics["steps"]}
    for k in ("rewards/margins", "rewards/accuracies"):
        if k in last:
            out[k.replace("/", "_")] = float(last[k])
    return out


def evaluate(cfg: Any, ctx: Any) -> dict:
    """Win rate vs the baseline under the judge, mean rewards, KL(policy || SFT)."""
    from .evaluate import compare, make_judge

    baseline_ref = cfg.baseline or cfg.sft
    if not baseline_ref:
        raise UserError("config: set baseline= (the policy to compare against, usually the SFT folder)")
    ds = load_data(ctx, cfg.data, cfg.data_args)
    policy, tok = policy_and_tokenizer(ctx, cfg.policy, {}, cfg.tokenizer or (baseline_ref if not looks_like_path(
        cfg.policy) else ""), 0)
    baseline = ctx.build(baseline_ref).to(ctx.device)
    sft_model = ctx.build(cfg.sft).to(ctx.device) if cfg.sft and cfg.sft != baseline_ref else baseline
    prompts = list(ds["prompt"])[: cfg.prompts]
    judge = make_judge(cfg.judge, ctx.device)
    m = compare(policy, baseline, sft_model, tok, prompts, judge, cfg.samples, cfg.max_new_tokens, cfg.temperature,
                ctx.seed, cfg.batch_size)
    ctx.log.info(f"win rate {m['win_rate']:.3f} vs {baseline_ref}; reward {m['reward']:.3f} (baseline "
                 f"{m['baseline_reward']:.3f}); KL(policy || sft) {m['kl']:.3f} nats")
    return m
