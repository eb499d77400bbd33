"""The `sft`, `align` and `evaluate` tasks (``fn(cfg, ctx) -> metrics``)."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from paperloom_lm.data import load_tokenizer, train_tokenizer, use_folder_tokenizer  # noqa: E402
from paperloom_lm.hf import MetricsToRun, save_hf, train  # noqa: E402
from paperloom_lm.tasks import build_model  # noqa: E402

from paperloom import UserError  # noqa: E402
from paperloom.context import is_main_process, looks_like_path  # noqa: E402

from . import data as D  # noqa: E402
from .reference_update import load_reference  # noqa: E402
from .trainer import align_trainer, sft_trainer  # noqa: E402


def load_data(ctx: Any, ref: str, args: dict) -> Any:
    try:
        return ctx.build(ref, **args)
    except TypeError as exc:  # an unknown keyword in data_args
        raise UserError(f"config: data_args {args} do not fit dataset {ref}: {exc}") from None


def policy_and_tokenizer(ctx: Any, cfg: Any, ds: Any) -> tuple[Any, Any]:
    """The policy and its tokenizer: `cfg.tokenizer`, the checkpoint folder's, or (a new model) trained on `ds`."""
    use_folder_tokenizer(cfg, cfg.policy)  # a checkpoint folder brings its own tokenizer
    if cfg.tokenizer:
        tok = load_tokenizer(cfg.tokenizer)
    elif looks_like_path(cfg.policy):
        raise UserError(f"{cfg.policy} holds no tokenizer; set tokenizer=/path/to/tokenizer-folder")
    else:
        tok = train_tokenizer(D.texts(ds), cfg.vocab_size, ctx.out / "tokenizer" if is_main_process() else None)
        ctx.log.info(f"trained a {len(tok)}-token BPE tokenizer on the data -> {ctx.out / 'tokenizer'}")
    return build_model(ctx, cfg.policy, cfg.policy_args, tok).to(ctx.device), tok


def sft(cfg: Any, ctx: Any) -> dict:
    """Supervised warm-up on the chosen responses (trl SFTTrainer, completion-only loss)."""
    ds = load_data(ctx, cfg.data, cfg.data_args)
    model, tok = policy_and_tokenizer(ctx, cfg, ds)
    rows = D.sft_rows(ds)
    ctx.log.info(f"SFT on {len(rows)} (prompt, chosen) rows, {cfg.train.steps} steps")
    trainer = sft_trainer(model, tok, rows, train=cfg.train, out_dir=ctx.checkpoint_dir, device=ctx.device,
                          seed=ctx.seed, callbacks=(MetricsToRun(ctx.log_metrics, "sft_"),))
    metrics = train(trainer, ctx.resume)
    if trainer.is_world_process_zero():
        save_hf(trainer.model, ctx.out / "model", tok)
        ctx.log.info(f"SFT policy -> {ctx.out / 'model'}")
    return {"sft_loss": metrics["train_loss"], "steps": metrics["steps"]}


def align(cfg: Any, ctx: Any) -> dict:
    """DPO / IPO / KTO with the chosen reference update; the aligned policy is saved to model/."""
    ds = load_data(ctx, cfg.data, cfg.data_args)
    model, tok = policy_and_tokenizer(ctx, cfg, ds)
    r = cfg.ref
    name = ("tr-" if r.update != "none" else "") + cfg.loss
    ctx.log.info(f"{name} ({r.update}, alpha={r.alpha}, tau={r.tau}, beta={cfg.beta}) on {len(ds)} rows, "
                 f"{cfg.train.steps} steps")
    trainer = align_trainer(model, tok, ds, loss=cfg.loss, beta=cfg.beta, update=r.update, alpha=r.alpha, tau=r.tau,
                            train=cfg.train, out_dir=ctx.checkpoint_dir, device=ctx.device, seed=ctx.seed,
                            callbacks=(MetricsToRun(ctx.log_metrics),),
                            precompute_ref_log_probs=cfg.precompute_ref_log_probs)
    metrics = train(trainer, ctx.resume, on_resume=partial(load_reference, trainer))  # the moved reference too
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
    """Win rate vs the baseline under the judge, mean rewards, KL(policy || SFT) (`cfg.evaluator`)."""
    baseline_ref = cfg.baseline or cfg.sft
    if not baseline_ref:
        raise UserError("config: set baseline= (the policy to compare against, usually the SFT folder)")
    ds = load_data(ctx, cfg.data, cfg.data_args)
    use_folder_tokenizer(cfg, cfg.policy)  # the policy folder's tokenizer, else the baseline folder's
    use_folder_tokenizer(cfg, baseline_ref)
    if not cfg.tokenizer:
        raise UserError(f"neither policy = {cfg.policy!r} nor baseline = {baseline_ref!r} holds a tokenizer; set "
                        "tokenizer=/path/to/tokenizer-folder")
    tok = load_tokenizer(cfg.tokenizer)
    policy = build_model(ctx, cfg.policy, {}, tok).to(ctx.device)
    baseline = ctx.build(baseline_ref).to(ctx.device)
    sft_model = ctx.build(cfg.sft).to(ctx.device) if cfg.sft and cfg.sft != baseline_ref else baseline
    evaluator = ctx.build(cfg.evaluator, baseline=baseline, sft=sft_model, judge=cfg.judge, tokenizer=tok,
                          prompts=cfg.prompts, samples=cfg.samples, max_new_tokens=cfg.max_new_tokens,
                          temperature=cfg.temperature, batch_size=cfg.batch_size)
    m = evaluator(policy, ds, ctx)
    ctx.log.info(f"win rate {m['win_rate']:.3f} vs {baseline_ref}; reward {m['reward']:.3f} (baseline "
                 f"{m['baseline_reward']:.3f}); KL(policy || sft) {m['kl']:.3f} nats")
    return m
