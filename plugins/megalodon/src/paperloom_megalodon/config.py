"""Task schemas of the Megalodon plugin (plain dataclasses: no torch import).

`pretrain` is the shared recipe of the `lm` plugin, so its schema is `paperloom_lm.config.PretrainConfig`;
Megalodon's defaults and the paper's recipes are the YAML files configs/pretrain.yaml and
configs/pretrain/<preset>.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

from paperloom_lm.config import PretrainConfig

from paperloom.config import option
from paperloom.contracts import CAUSAL_LM

__all__ = ["DemoConfig", "PretrainConfig"]


@dataclass
class DemoConfig:
    """Cross-chunk recall: Megalodon vs the same model with CEMA disabled."""

    model: str = option("megalodon:tiny", component="model", contract=CAUSAL_LM,
                        help="the Megalodon component both models are built from (sizes below override it; the "
                             "ablation passes use_cema=False)")
    n_chunks: int = option(5, min=1, help="sequence length in chunks; the marker ends a random chunk k in "
                                   "[first_chunk, n_chunks-3], the answer starts chunk k+1, the query ends the last")
    first_chunk: int = option(1, min=0,
                              help="earliest chunk the marker may end (the norm-statistics leak is largest early)")
    chunk_size: int = option(8, min=1, help="attention chunk size (tokens)")
    n_values: int = option(8, min=1, help="number of possible values (chance accuracy = 1 / n_values)")
    hidden_size: int = option(64, min=1, help="model width")
    num_hidden_layers: int = option(2, min=1, help="blocks")
    cema_ndim: int = option(16, min=1, help="CEMA states per feature (N)")
    norm_num_groups: int = option(4, min=1, help="timestep-norm groups")
    steps: int = option(800, min=1, help="training steps per model")
    batch_size: int = option(32, min=1, help="sequences per step")
    lr: float = option(5e-3, min=0, help="AdamW learning rate")
    eval_size: int = option(512, min=1, help="held-out sequences for the accuracy")
    eval_every: int = option(50, min=1, help="log held-out accuracy every N steps")
