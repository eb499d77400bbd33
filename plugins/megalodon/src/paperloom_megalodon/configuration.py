"""`MegalodonConfig`: the Hugging Face config of a Megalodon causal LM, and the named size presets.

Field names follow Hugging Face conventions (`hidden_size`, `num_hidden_layers`, ...) so generic tools
(Inheritune's layer slicing, trl, accelerate) find what they expect. Paper: Ma et al., "Megalodon:
Efficient LLM Pretraining and Inference with Unlimited Context Length", arXiv 2404.08801.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

BACKENDS = ("auto", "torch", "triton")

# Named sizes. `tiny` is the test size; `small` uses the paper's small-config defaults (N=16 CEMA states,
# chunk 2048, 32 norm groups); `paper_7b` copies the 7B model of the paper (§4 / official `mega7.1B`).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=1, z_dim=16, value_dim=64,
                 ffn_hidden_size=64, cema_ndim=4, chunk_size=16, norm_num_groups=4),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=1, z_dim=64, value_dim=512,
                  ffn_hidden_size=640, cema_ndim=16, chunk_size=2048, norm_num_groups=32),
    "paper_7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=4, z_dim=1024, value_dim=8192,
                     ffn_hidden_size=11264, cema_ndim=16, chunk_size=4096, norm_num_groups=64, swiglu=True),
}


class MegalodonConfig(PretrainedConfig):
    """Sizes and switches of a Megalodon LM.

    hidden_size is the model width D; z_dim the width of the shared representation Z that gives the
    queries and keys; value_dim the width of values / attention output; cema_ndim the N complex EMA
    states per feature; chunk_size the attention chunk; norm_num_groups the timestep-norm groups G.
    `use_cema=False` replaces CEMA by the identity (the ablation of the demo). `kernel_backend` picks
    the CEMA / timestep-norm implementation: `auto` (Triton on CUDA when installed, else PyTorch),
    `torch` or `triton` (forced; on CPU it needs TRITON_INTERPRET=1).
    """

    model_type = "megalodon"

    def __init__(self, vocab_size: int = 2048, hidden_size: int = 256, num_hidden_layers: int = 4,
                 num_attention_heads: int = 1, z_dim: int = 64, value_dim: int = 512, ffn_hidden_size: int = 640,
                 cema_ndim: int = 16, chunk_size: int = 2048, norm_num_groups: int = 32, norm_eps: float = 1e-5,
                 rope_base: float = 10000.0, swiglu: bool = False, use_cema: bool = True, scale_emb: bool = False,
                 rescale_nffn: bool = False, dropout: float = 0.0, attention_dropout: float = 0.0,
                 hidden_dropout: float = 0.0, initializer_range: float = 0.02, kernel_backend: str = "auto",
                 use_cache: bool = True, tie_word_embeddings: bool = False, bos_token_id: int = 0,
                 eos_token_id: int = 0, pad_token_id: int | None = None, **kwargs: Any) -> None:
        if hidden_size % norm_num_groups:
            raise ValueError(f"hidden_size={hidden_size} must be a multiple of norm_num_groups={norm_num_groups}")
        if z_dim % num_attention_heads or value_dim % num_attention_heads:
            raise ValueError(f"z_dim={z_dim} and value_dim={value_dim} must be multiples of num_attention_heads")
        if (z_dim // num_attention_heads) % 2:
            raise ValueError(f"z_dim / num_attention_heads = {z_dim // num_attention_heads} must be even (RoPE)")
        if kernel_backend not in BACKENDS:
            raise ValueError(f"kernel_backend={kernel_backend!r}; expected one of {BACKENDS}")
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        self.num_attention_heads, self.z_dim, self.value_dim = num_attention_heads, z_dim, value_dim
        self.ffn_hidden_size, self.cema_ndim, self.chunk_size = ffn_hidden_size, cema_ndim, chunk_size
        self.norm_num_groups, self.norm_eps, self.rope_base = norm_num_groups, norm_eps, rope_base
        self.swiglu, self.use_cema, self.scale_emb, self.rescale_nffn = swiglu, use_cema, scale_emb, rescale_nffn
        self.dropout, self.attention_dropout, self.hidden_dropout = dropout, attention_dropout, hidden_dropout
        self.initializer_range, self.kernel_backend, self.use_cache = initializer_range, kernel_backend, use_cache
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)


def preset_config(preset: str = "small", **overrides: Any) -> MegalodonConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown Megalodon preset {preset!r}; expected one of {', '.join(PRESETS)}")
    return MegalodonConfig(**{**PRESETS[preset], **overrides})
