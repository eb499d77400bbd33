"""Task config schemas of the tr-dpo plugin (plain dataclasses: importing this loads no torch).

Paper values (Gorbatovski et al. 2024, Sec. 5 / App. B) live only in `configs/align/paper.yaml`, each with its
source; `configs/<task>.yaml` are the tasks' defaults, `configs/<task>/<preset>.yaml` their presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom_lm.config import model_field

from paperloom.config import option

LOSSES = ("dpo", "ipo", "kto")
UPDATES = ("none", "soft", "hard", "ema")


@dataclass
class RefUpdateConfig:
    """How the reference policy moves during training (TR-DPO, Sec. 3 of the paper).

    soft (Eq. 5): ref <- alpha*theta + (1-alpha)*ref every tau steps (as the authors' trl callback applies it);
    hard (Eq. 6): ref <- theta every tau steps (alpha = 1);
    ema: ref <- alpha*theta + (1-alpha)*ref after every step (tau = 1; not the paper's); none: plain DPO / IPO / KTO.
    """

    update: str = option("none", choices=UPDATES,
                         help="reference update: none (DPO), soft (alpha every tau), hard (copy every tau), ema "
                              "(alpha every step)")
    alpha: float = option(0.6, min=0, max=1, help="mixing weight of the policy in the soft / ema update")
    tau: int = option(512, min=1, help="steps between reference updates for soft / hard")


@dataclass
class TrainArgs:
    """Optimisation settings passed to the trl trainer (trl's CPU-hostile defaults are overridden here)."""

    steps: int = option(100, min=1, help="optimizer steps")
    batch_size: int = option(8, min=1, help="per-device batch size (pairs for DPO/IPO, examples for KTO)")
    grad_accum: int = option(1, min=1, help="gradient accumulation steps")
    lr: float = option(1e-6, min=0, help="learning rate")
    scheduler: str = option("constant", help="transformers lr_scheduler_type (constant, linear, cosine, ...)")
    warmup_steps: int = option(0, min=0, help="linear warmup steps")
    weight_decay: float = option(0.0, min=0, help="AdamW weight decay")
    max_grad_norm: float = option(1.0, min=0, help="gradient clipping")
    max_length: int = option(512, min=1, help="max tokens of prompt + completion (longer ones are truncated)")
    save_steps: int = option(100, min=1,
                             help="write a resumable trainer checkpoint every N steps (trainer/checkpoint-N)")
    log_steps: int = option(10, min=1, help="log training metrics every N steps")
    bf16: bool = option(False, help="bf16 mixed precision (GPU)")
    gradient_checkpointing: bool = option(False, help="trade compute for memory")


@dataclass
class SFTTaskConfig:
    """Supervised warm-up on the chosen responses of a preference dataset (trl SFTTrainer)."""

    policy: str = model_field("lm:gpt2", "the policy to warm up")
    policy_args: dict[str, Any] = option({}, help="keyword arguments for the policy builder (sizes of a new model)")
    tokenizer: str = option("", help="tokenizer folder; empty: the policy folder's, else one trained on the data")
    vocab_size: int = option(512, min=1, help="vocab size when a tokenizer is trained on the data")
    # No contract here: SFT reads prompt + chosen from pairs, or prompt + completion (label true) from unpaired data.
    data: str = option("tr-dpo:synthetic", help="dataset component: tr-dpo:hh, tr-dpo:tldr, tr-dpo:hf-disk, "
                       "tr-dpo:unpaired, tr-dpo:synthetic", component="dataset")
    data_args: dict[str, Any] = option({}, help="keyword arguments for the dataset (path=..., max_rows=...)")
    train: TrainArgs = option(default_factory=lambda: TrainArgs(steps=200, lr=1e-3, batch_size=16, max_length=64))


@dataclass
class AlignTaskConfig:
    """DPO / IPO / KTO with the TR reference update (trl DPOTrainer / KTOTrainer + SyncRefModelCallback)."""

    policy: str = model_field("lm:gpt2", "the SFT policy (usually the sft task's model/ folder)")
    policy_args: dict[str, Any] = option({}, help="keyword arguments for the policy builder")
    tokenizer: str = option("", help="tokenizer folder; empty: the policy folder's, else one trained on the data")
    vocab_size: int = option(512, min=1, help="vocab size when a tokenizer is trained on the data")
    # KTO also takes unpaired data, so the contract (preference-pairs vs unpaired-preferences) is checked in code.
    data: str = option("tr-dpo:synthetic", help="dataset component (pairs; unpaired rows only for loss=kto)",
                       component="dataset")
    data_args: dict[str, Any] = option({}, help="keyword arguments for the dataset")
    loss: str = option("dpo", choices=LOSSES, help="dpo (sigmoid), ipo or kto; with a reference update: TR-DPO/IPO/KTO")
    beta: float = option(0.05, min=0, help="KL strength beta")
    ref: RefUpdateConfig = option(default_factory=RefUpdateConfig)
    precompute_ref_log_probs: bool = option(False,
                                            help="precompute reference log-probs (only valid with ref.update=none)")
    train: TrainArgs = option(default_factory=TrainArgs)


@dataclass
class EvaluateTaskConfig:
    """Win rate of a policy against a baseline under a judge, and KL(policy || SFT) on samples."""

    policy: str = model_field("lm:gpt2", "the aligned policy")
    baseline: str = option("", help="baseline policy folder (usually the SFT model); empty: the sft folder")
    sft: str = option("", help="the SFT policy folder KL is measured against; empty: the baseline")
    tokenizer: str = option("", help="tokenizer folder; empty: the policy folder's")
    evaluator: str = option("tr-dpo:win-rate", component="evaluator",
                            help="evaluator component: evaluate(policy, prompts, ctx) -> win rate, rewards, KL")
    judge: str = option("gold", help="'gold' (the synthetic task's hidden reward) or a local sequence-classification "
                        "reward-model folder")
    data: str = option("tr-dpo:synthetic", help="dataset whose prompts are evaluated", component="dataset")
    data_args: dict[str, Any] = option({"n": 64, "split": "test"}, help="keyword arguments for the dataset")
    prompts: int = option(64, min=1, help="prompts evaluated (the first N of the data)")
    samples: int = option(4, min=1, help="responses sampled per prompt and policy")
    max_new_tokens: int = option(16, min=1, help="response length cap")
    temperature: float = option(1.0, min=0, help="sampling temperature (1.0 keeps the KL estimate unbiased)")
    batch_size: int = option(64, min=1, help="sequences per generation batch")


@dataclass
class DemoConfig:
    """SFT -> on-policy pairs labelled by a hidden gold reward -> DPO vs TR-DPO soft vs TR-DPO hard at equal steps,
    over several alignment seeds, judged on one fixed evaluation set (also the schema of `tr-dpo:frontier`)."""

    policy: str = model_field("lm:gpt2", "the policy, built with the locally trained tokenizer's vocabulary")
    policy_args: dict[str, Any] = option({}, help="keyword arguments for the policy builder (sizes)")
    vocab_size: int = option(512, min=1, help="tokenizer vocabulary (trained locally on the synthetic text)")
    sft_rows: int = option(2000, min=1, help="synthetic SFT examples")
    sft_steps: int = option(300, min=1, help="SFT steps")
    sft_lr: float = option(3e-3, min=0, help="SFT learning rate")
    bt_scale: float = option(2.0, min=0, help="Bradley-Terry labels: P(y1 > y2) = sigmoid(bt_scale * (r1 - r2))")
    pair_prompts: int = option(1024, min=1, help="prompts sampled for on-policy preference pairs")
    align_steps: int = option(200, min=1, help="alignment steps per method (equal for all)")
    batch_size: int = option(16, min=1, help="pairs per step")
    lr: float = option(5e-4, min=0, help="alignment learning rate")
    beta: float = option(0.5, min=0, help="DPO beta")
    alpha: float = option(0.6, min=0, max=1, help="soft-update alpha")
    tau: int = option(32, min=1, help="steps between reference updates (soft and hard)")
    eval_prompts: int = option(96, min=1, help="held-out prompts for win rate and KL")
    eval_samples: int = option(4, min=1, help="samples per prompt and policy")
    curve_points: int = option(4, min=1, help="checkpoints evaluated per run (evenly spaced; the last is the end)")
    seeds: int = option(3, min=1, help="alignment seeds per method (seed k: data order of run seed + k, the same for "
                        "every method)")
    kl_budgets: list[float] = option([0.5, 1.0, 2.0, 4.0], help="KL budgets K of the frontier: best gold reward "
                                     "among a run's checkpoints with KL(policy || SFT) <= K")
    margin_se: float = option(2.0, min=0, help="claims hold by this many standard errors (`*_lower` metrics)")
    threads: int = option(1, min=0,
                          help="torch CPU threads (1 is fastest for a model this small, and on a busy machine)")
    methods: list[str] = option(["dpo", "tr-dpo-soft", "tr-dpo-hard"], help="runs compared (dpo, tr-dpo-soft, "
                                "tr-dpo-hard, tr-dpo-ema, ipo, tr-ipo-soft, tr-ipo-hard, tr-ipo-ema)")
