"""Typed config schemas of the Inheritune tasks (cheap to import: no torch).

`configs/<task>.yaml` are instances of these; `configs/pretrain/paper.yaml` holds the paper's values
with their source quoted. `pretrain` is the shared recipe of the `lm` plugin, so its schema is lm's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom_lm.config import PretrainConfig, TextDataConfig, model_field

from paperloom.config import option
from paperloom.contracts import CAUSAL_LM
from paperloom.schemas import OptimConfig, TrainerConfig

__all__ = ["DemoConfig", "InheritConfig", "InheritSpec", "PretrainConfig"]


@dataclass
class InheritSpec:
    """What the student takes from the reference (Inheritune, Algorithm 1: the first k blocks + the LM head)."""

    k: int = option(0, min=0, help="blocks the student keeps: reference blocks 0..k-1 (0 = half, the paper's choice)")
    blocks: list[int] = option([], help="explicit reference blocks to copy, in order (overrides k); [] = first k")
    copy_head: bool = option(True, help="copy the LM head; with tied embeddings (GPT-2) it is the token embeddings")
    copy_embeddings: bool = option(True, help="copy the token embeddings (untied models such as Llama)")
    copy_final_norm: bool = option(False, help="copy the final norm (ln_f / model.norm); reference code re-inits it")
    copy_position_embeddings: bool = option(False, help="copy learned position embeddings (GPT-2 wpe); re-initialised "
                                                        "in the reference code")
    copy_other: bool = option(False, help="copy any other tensor outside the blocks (model-specific globals)")
    trust_remote_code: bool = option(False, help="allow checkpoint folders whose config.json names custom code")


@dataclass
class InheritConfig:
    """Make the k-block student of a reference and save it as a Hugging Face checkpoint folder."""

    reference: str = model_field("lm:gpt2", "the reference (large) LM")
    reference_args: dict[str, Any] = option({}, help="builder arguments when `reference` is a component (sizes)")
    inherit: InheritSpec = option(default_factory=InheritSpec, help="what the student inherits")
    out: str = option("", help="folder to save the student in (default: <run>/student); must be empty or absent")


@dataclass
class DemoConfig:
    """Reference trained on all the data -> inherited students on a subset vs same-size models from scratch (full
    data with the reference's budget; the subset) and the reference continued on the subset, several seeds."""

    model: str = model_field("lm:gpt2", "the reference architecture (trained from scratch by the demo)")
    model_args: dict[str, Any] = option({"n_layer": 8, "n_embd": 64, "n_head": 2, "n_positions": 64},
                                        help="reference builder arguments (8 blocks)")
    student: str = option("inheritune:student", component="model", contract=CAUSAL_LM,
                          help="the student builder: called with reference=<the saved reference folder>, the "
                               "`inherit` fields and seed; random_init=true for the baseline")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text: the embedded corpus by default")
    inherit: InheritSpec = option(default_factory=InheritSpec, help="what the student inherits (k=4 of 8)")
    subset_fraction: float = option(0.1, min=0, max=1,
                                    help="fraction of the reference's training blocks the students see "
                                              "(the paper: 0.1%)")
    seeds: list[int] = option([0, 1, 2], help="seeds of every arm (re-initialised tensors, random init, data order); "
                                              "the reference is one model, seeded by --seed")
    arms: list[str] = option(["inherited", "scratch_full", "reference_continued"],
                             help="arms trained per seed: inherited (subset), scratch_full (k blocks from scratch, "
                                  "full data, the reference's budget), scratch_subset (k blocks from scratch, subset, "
                                  "the students' steps), reference_continued (the reference, further on the subset)")
    margin_se: float = option(3.0, min=0, help="verify margin: the bounds <arm>_val_loss_upper/_lower are the mean "
                                               "+/- this many standard errors over seeds")
    match_tolerance: float = option(0.02, min=0, help="'matches the reference' = inherited_val_loss_upper below "
                                                      "reference_val_loss + this (nats)")
    optim: OptimConfig = option(default_factory=OptimConfig, help="optimizer of the reference (and of scratch_full)")
    trainer: TrainerConfig = option(default_factory=TrainerConfig,
                                    help="trainer of the reference (and of scratch_full: the same steps)")
    student_optim: OptimConfig = option(default_factory=OptimConfig, help="optimizer of the subset arms (inherited, "
                                      "scratch_subset, reference_continued)")
    student_trainer: TrainerConfig = option(default_factory=TrainerConfig,
                                            help="trainer of the subset arms (the same steps for each)")
