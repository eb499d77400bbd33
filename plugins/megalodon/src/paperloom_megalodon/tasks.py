"""`megalodon:pretrain`: the one causal-LM pre-training recipe of the `lm` plugin, with Megalodon's defaults.

Same function as `lm:pretrain` (Lightning, AdamW + warmup/cosine, `token_budget`, `--resume`, HF export);
what makes it Megalodon's are configs/pretrain.yaml (a small Megalodon) and the presets
configs/pretrain/{tiny,small,7b}.yaml (the paper's recipes). Sequences longer than the model's chunk
are split into chunks inside the model (attention cost stays linear in length); CEMA and timestep norm
carry context across them. Loss by context length of a saved model: `lm:evaluate` (see README).
The demo lives in demo.py.
"""

from __future__ import annotations

from paperloom_lm.tasks import pretrain

__all__ = ["pretrain"]
