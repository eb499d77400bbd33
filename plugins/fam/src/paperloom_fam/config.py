"""Typed config schemas of the FAM tasks (cheap to import: no torch).

`configs/<task>.yaml` are instances of these; `configs/finetune/paper.yaml` holds the paper's values with
their source quoted. The text section is the `lm` plugin's `TextDataConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom_lm.config import TextDataConfig, model_field

from paperloom.config import option
from paperloom.schemas import OptimConfig, TrainerConfig

__all__ = ["ConvertConfig", "DemoConfig", "EvaluateConfig", "FAMSettings", "FinetuneConfig", "LoraConfig"]


@dataclass
class FAMSettings:
    """How the base decoder runs (TransformerFAM, Algorithm 2): BSWA blocks + memory segments + FAM tokens."""

    block_size: int = option(1024, min=1, help="tokens per block (BSWA block; FAM compresses each block)")
    mem_segments: int = option(3, min=0, help="previous whole blocks whose K/V each token attends to (0 = none)")
    fam_len: int = option(64, min=0, help="FAM tokens per layer (0 = plain BSWA, no feedback memory)")
    fam_positions: str = option("last", choices=("last", "float", "zero"),
                                help="RoPE positions of the FAM (B.2): last = the last fam_len positions of the "
                                     "block it compressed (F_0 at -fam_len..-1); float = no rotation; zero = the "
                                     "stream's first position")
    zero_first_residual: bool = option(True, help="the first FAM update (block 1) adds a zero residual (B.1)")


@dataclass
class LoraConfig:
    """LoRA through peft (the paper fine-tunes with LoRA rank 64); rank 0 = full fine-tuning."""

    rank: int = option(0, min=0, help="LoRA rank (0 = full fine-tuning of every base weight)")
    alpha: float = option(16.0, min=0, help="LoRA alpha")
    dropout: float = option(0.0, min=0, max=1, help="LoRA dropout")
    targets: list[str] = option([], help="module names LoRA adapts ([] = the attention projections of the layout: "
                                         "q_proj,k_proj,v_proj,o_proj for Llama, attn.c_attn,attn.c_proj for GPT-2)")


def base_field() -> Any:
    return model_field("lm:llama", "the decoder to run as TransformerFAM (Llama-family or GPT-2 layouts)")


@dataclass
class ConvertConfig:
    """Wrap a decoder (a checkpoint folder or a component) as BSWA/FAM and save it as an HF folder."""

    base: str = base_field()
    base_args: dict[str, Any] = option({}, help="builder arguments when `base` is a component (sizes)")
    fam: FAMSettings = option(default_factory=FAMSettings, help="BSWA / FAM settings")
    out: str = option("", help="folder to save in (default: <run>/model); must be empty or absent")


@dataclass
class FinetuneConfig:
    """Fine-tune a decoder as TransformerFAM on long packed text: Lightning, LoRA or full, random state passing."""

    base: str = base_field()
    base_args: dict[str, Any] = option({}, help="builder arguments when `base` is a component (sizes)")
    fam: FAMSettings = option(default_factory=FAMSettings, help="BSWA / FAM settings")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text; data.block_size = training sequence")
    lora: LoraConfig = option(default_factory=LoraConfig, help="LoRA (rank 0 = full fine-tuning)")
    state_passing: float = option(0.0, min=0, max=1, help="probability that a step starts from the previous step's "
                                                          "FAM instead of F_0 (random state passing; paper 0.8)")
    max_position_offset: int = option(0, min=0, help="random position offset in [0, N] added per step (0 = off)")
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW + warmup/cosine")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")
    export: bool = option(True, help="save the fine-tuned FAM model (LoRA merged) + tokenizer in model/")


@dataclass
class EvaluateConfig:
    """Passkey retrieval by length and long-context loss by position bucket of a FAM model."""

    model: str = model_field("fam:wrap", "the model: a saved FAM folder, or fam:wrap (wraps model_args.base)")
    model_args: dict[str, Any] = option({}, help="builder arguments (fam:wrap: base, base_args and FAM settings)")
    passkey: str = option("tokens", choices=("tokens", "text", "off"),
                          help="tokens: the synthetic passkey of synthetic.py (the demo's vocabulary); text: a "
                               "natural-language passkey through the tokenizer (data.tokenizer or the folder's)")
    lengths: list[int] = option([64, 128, 256], help="passkey sequence lengths (tokens)")
    samples: int = option(128, min=1, help="passkey sequences per length")
    n_values: int = option(8, min=2, help="tokens passkey: number of values (chance = 1/n_values)")
    n_filler: int = option(16, min=1, help="tokens passkey: number of filler token ids")
    key_within: int = option(8, min=2, help="tokens passkey: the key sits in the first key_within tokens")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text for the loss by position ('' = skip)")
    loss_length: int = option(0, min=0, help="sequence length for the loss by position bucket (0 = skip)")
    buckets: int = option(4, min=1, help="position buckets of the loss")
    batch_size: int = option(8, min=1, help="sequences per forward pass")


@dataclass
class DemoConfig:
    """Toy passkey past BSWA's receptive field: the same tiny decoder fine-tuned as BSWA and as FAM."""

    base: str = base_field()
    base_args: dict[str, Any] = option({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                                        "intermediate_size": 128, "max_position_embeddings": 4096},
                                       help="the tiny decoder (random init; both methods start from the same seed)")
    block_size: int = option(8, min=1, help="BSWA / FAM block")
    mem_segments: int = option(1, min=0, help="BSWA memory segments")
    fam_len: int = option(4, min=1, help="FAM tokens of the FAM arm (the BSWA arm has 0)")
    n_values: int = option(8, min=2, help="passkey values (chance = 1/n_values)")
    n_filler: int = option(16, min=1, help="filler token ids")
    train_length: int = option(64, min=4, help="longest training sequence; each step draws a length of 2.. "
                                               "train_length/block_size blocks (short ones fit BSWA's field)")
    eval_lengths: list[int] = option([16, 64, 128, 256], help="evaluated sequence lengths")
    eval_size: int = option(256, min=1, help="held-out sequences per length (the same for every method)")
    seeds: list[int] = option([0, 1, 2], help="seeds (model init and data order); each method trains once per seed; "
                                              "--seed S adds 1000 x S to each (and draws new held-out sequences)")
    steps: int = option(400, min=1, help="training steps per method and seed")
    batch_size: int = option(32, min=1, help="sequences per step")
    optim: OptimConfig = option(default_factory=lambda: OptimConfig(lr=3e-3, min_lr=3e-4, warmup_steps=40,
                                                                    weight_decay=0.0),
                                help="AdamW + warmup/cosine")
    margin_se: float = option(3.0, min=0, help="verify margin: FAM - BSWA accuracy beyond the receptive field, "
                                               "minus this many standard errors over seeds")
