"""Megalodon (Ma et al., arXiv 2404.08801) as a Hugging Face causal LM: `MegalodonConfig` and
`MegalodonForCausalLM`, model type "megalodon".

    x = Embed(tokens)                                      (B, T, D); * sqrt(D) when scale_emb
    for each block:  Y^ = MegalodonAttention(x)             timestep norm, CEMA, normalized chunk attention
                     x  = FFN(LayerNorm(Y^)) + x            pre-norm, two-hop residual (§3.4, Fig. 3c)
    logits = lm_head(TimestepNorm(x))                       (B, T, V): final timestep norm + LM head

Blocks live in `model.layers` (an nn.ModuleList of `config.num_hidden_layers`), embeddings in
`model.embed_tokens`, the head in `lm_head`, as in Llama, so layer-slicing tools work unchanged.
Incremental decoding carries a `MegalodonCache` (per layer: CEMA state, timestep-norm statistics and
the open chunk's keys/values; plus the final norm's statistics): token-by-token == full forward.
Importing this module registers the "megalodon" model type with the Auto classes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from .attention import LayerState, MegalodonAttention
from .cema import ComplexEMA, init_cema_
from .timestep_norm import State, TimestepNorm

BACKENDS = ("auto", "torch", "triton")

# The sizes behind the components megalodon:tiny / small / 7b. `tiny` is the test size; `small` uses the
# paper's small-config defaults (N=16 CEMA states, chunk 2048, 32 norm groups; official mega200M); `7b` is
# the 7B model of the paper (§4: 32 layers, D=4096, chunk 4096) with the official `mega7.1B` widths.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=1, z_dim=16, value_dim=64,
                 ffn_hidden_size=64, cema_ndim=4, chunk_size=16, norm_num_groups=4),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=1, z_dim=64, value_dim=512,
                  ffn_hidden_size=640, cema_ndim=16, chunk_size=2048, norm_num_groups=32),
    "7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=4, z_dim=1024, value_dim=8192,
               ffn_hidden_size=11264, cema_ndim=16, chunk_size=4096, norm_num_groups=64, swiglu=True),
}


class MegalodonConfig(PretrainedConfig):
    """Sizes and switches of a Megalodon LM (HF field names, so generic tools find what they expect).

    hidden_size is the model width D; z_dim the width of the shared representation Z that gives the
    queries and keys; value_dim the width of values / attention output; cema_ndim the N complex EMA
    states per feature; chunk_size the attention chunk; norm_num_groups the timestep-norm groups G.
    `use_cema=False` replaces CEMA by the identity (the ablation of the demo). `kernel_backend` picks
    the CEMA / timestep-norm implementation: `auto` (Triton on CUDA when installed, else PyTorch),
    `torch` or `triton` (forced; on CPU it needs TRITON_INTERPRET=1). `recompute_cema_norm` (PyTorch path,
    training) stores only the inputs of timestep norm + CEMA and recomputes them in backward (FFT buffers and
    norm intermediates are not kept: less activation memory, the same values and gradients);
    `recompute_attention` (off by default; training without a cache) keeps only X' and M of each attention
    block and reruns projections, chunk attention and the gate in backward (less memory, more time).
    """

    model_type = "megalodon"

    def __init__(self, vocab_size: int = 2048, hidden_size: int = 256, num_hidden_layers: int = 4,
                 num_attention_heads: int = 1, z_dim: int = 64, value_dim: int = 512, ffn_hidden_size: int = 640,
                 cema_ndim: int = 16, chunk_size: int = 2048, norm_num_groups: int = 32, norm_eps: float = 1e-5,
                 rope_base: float = 10000.0, swiglu: bool = False, use_cema: bool = True, scale_emb: bool = False,
                 rescale_nffn: bool = False, dropout: float = 0.0, attention_dropout: float = 0.0,
                 hidden_dropout: float = 0.0, initializer_range: float = 0.02, kernel_backend: str = "auto",
                 recompute_cema_norm: bool = True, recompute_attention: bool = False, use_cache: bool = True,
                 tie_word_embeddings: bool = False,
                 bos_token_id: int = 0, eos_token_id: int = 0, pad_token_id: int | None = None, **kwargs: Any) -> None:
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
        self.recompute_cema_norm, self.recompute_attention = recompute_cema_norm, recompute_attention
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)


def preset_config(preset: str = "small", **overrides: Any) -> MegalodonConfig:
    """The named size (`PRESETS`) with any `MegalodonConfig` field overridden."""
    if preset not in PRESETS:
        raise ValueError(f"unknown Megalodon preset {preset!r}; expected one of {', '.join(PRESETS)}")
    return MegalodonConfig(**{**PRESETS[preset], **overrides})


class MegalodonCache:
    """Recurrent + open-chunk state of every layer. Its size does not grow with the sequence (O(chunk))."""

    is_compileable = False

    def __init__(self, num_layers: int) -> None:
        self.layers: list[LayerState | None] = [None] * num_layers
        self.final_norm: State | None = None
        self.seen_tokens = 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    @property
    def is_linear(self) -> list[bool]:  # generate(): a recurrent state, nothing to slice by length
        return [True] * len(self.layers)

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        for layer in self.layers:
            if layer is not None:
                layer.index_select(beam_idx)
        if self.final_norm is not None:
            self.final_norm = tuple(t[beam_idx] for t in self.final_norm)


class MegalodonFFN(nn.Module):
    """Normalized FFN: LayerNorm, then SiLU (or SwiGLU) MLP; the caller adds the two-hop residual."""

    def __init__(self, config: MegalodonConfig, layer_idx: int) -> None:
        super().__init__()
        d, f = config.hidden_size, config.ffn_hidden_size
        self.norm = nn.LayerNorm(d, eps=config.norm_eps)
        self.fc1 = nn.Linear(d, f, bias=False)
        self.fc2 = nn.Linear(f, d, bias=False)
        self.fc3 = nn.Linear(d, f, bias=False) if config.swiglu else None
        self.hidden_dropout, self.dropout, self.layer_idx = config.hidden_dropout, config.dropout, layer_idx
        # optional layer scale of the official code (0.1 * 0.5^layer); off by default
        self.alpha = nn.Parameter(torch.full((d,), 0.1 * 0.5**layer_idx)) if config.rescale_nffn else None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = self.norm(y)  # (B, T, D)
        hidden = F.silu(self.fc1(x)) * self.fc3(x) if self.fc3 is not None else F.silu(self.fc1(x))  # (B, T, F)
        out = F.dropout(self.fc2(F.dropout(hidden, self.hidden_dropout, self.training)), self.dropout, self.training)
        return out if self.alpha is None else out * self.alpha


class MegalodonBlock(nn.Module):
    """One layer: Megalodon attention (with its own residual), then the normalized FFN (§3.4)."""

    def __init__(self, config: MegalodonConfig, layer_idx: int) -> None:
        super().__init__()
        self.attn = MegalodonAttention(config)
        self.ffn = MegalodonFFN(config, layer_idx)

    def forward(self, x, state=None, mask=None, use_cache=False):
        y, state = self.attn(x, state, mask, use_cache)  # (B, T, D): Y^ = attention(X) + X
        return self.ffn(y) + x, state  # (B, T, D): two-hop residual FFN(LN(Y^)) + X (block input, not Y^)


class MegalodonPreTrainedModel(PreTrainedModel):
    config_class = MegalodonConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True  # per layer: `model.activation_checkpointing_enable()`
    _no_split_modules = ["MegalodonBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        from transformers import initialization as init  # transformers >= 5 (pyproject)

        std = self.config.initializer_range
        if isinstance(module, ComplexEMA):
            init_cema_(module, init)
        elif isinstance(module, TimestepNorm):
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, MegalodonAttention):
            init.zeros_(module.gamma)
            init.zeros_(module.beta)
        elif isinstance(module, MegalodonFFN) and module.alpha is not None:
            init.constant_(module.alpha, 0.1 * 0.5**module.layer_idx)  # official per-layer scale
        elif isinstance(module, nn.Linear):
            # the LM head as official: std D^-1/2; other linear layers std initializer_range (0.02, see README)
            s = module.in_features**-0.5 if module is getattr(self, "lm_head", None) else std
            init.trunc_normal_(module.weight, mean=0.0, std=s, a=-3 * s, b=3 * s)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):  # official: N(0, 1/D) truncated at +-3 sigma
            s = module.embedding_dim**-0.5
            init.trunc_normal_(module.weight, mean=0.0, std=s, a=-3 * s, b=3 * s)
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            if module.weight is not None:
                init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)


class MegalodonModel(MegalodonPreTrainedModel):
    def __init__(self, config: MegalodonConfig) -> None:
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MegalodonBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = TimestepNorm(config.hidden_size, config.norm_num_groups, config.norm_eps, config.kernel_backend,
                                 config.recompute_cema_norm)
        self.gradient_checkpointing = False  # set by activation_checkpointing_enable(): recompute each layer
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, cache: MegalodonCache | None = None, use_cache=False,
                inputs_embeds=None, output_hidden_states=False):
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, D)
        if self.config.scale_emb:
            x = x * self.config.hidden_size**0.5
        x = F.dropout(x, self.config.dropout, self.training)
        length = x.shape[1]
        mask = None
        if attention_mask is not None and attention_mask.dim() == 2:
            mask = attention_mask[:, -length:].to(x.dtype)  # (B, T); generate() passes every token's mask so far
            mask = None if bool(mask.all()) else mask
        if use_cache and cache is None:
            cache = MegalodonCache(len(self.layers))
        hidden = [x] if output_hidden_states else None
        checkpoint = self.gradient_checkpointing and self.training and torch.is_grad_enabled() and not use_cache
        for i, layer in enumerate(self.layers):
            if checkpoint:  # store only the layer input; the backward recomputes the layer (activations O(B*L*D))
                x, state = self._gradient_checkpointing_func(lambda h, layer=layer: layer(h, None, mask)[0], x), None
            else:
                x, state = layer(x, cache.layers[i] if cache is not None else None, mask, use_cache)
            if use_cache:
                cache.layers[i] = state
            if hidden is not None:
                hidden.append(x)
        x, final = self.norm(x, cache.final_norm if cache is not None else None, mask)  # (B, T, D)
        if use_cache:
            cache.final_norm = tuple(t.detach() for t in final)
            cache.seen_tokens += length
        return BaseModelOutputWithPast(last_hidden_state=x, cache=cache if use_cache else None,
                                       hidden_states=tuple(hidden) if hidden is not None else None)


class MegalodonForCausalLM(MegalodonPreTrainedModel, GenerationMixin):
    """Megalodon with an LM head; `forward(input_ids, labels=...)` returns `.loss` and `.logits`."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _is_stateful = True  # recurrent state: assisted decoding cannot roll it back

    def __init__(self, config: MegalodonConfig) -> None:
        super().__init__(config)
        self.model = MegalodonModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:  # we bring our own cache (recurrent state, not a KV list)
        return False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(self, input_ids=None, attention_mask=None, cache=None, use_cache=None, labels=None,
                inputs_embeds=None, output_hidden_states=None, return_dict=None, logits_to_keep: int = 0,
                past_key_values=None, **kwargs: Any) -> CausalLMOutputWithPast:
        cache = cache if cache is not None else past_key_values
        if use_cache is None:
            use_cache = cache is not None
        out = self.model(input_ids, attention_mask, cache, use_cache, inputs_embeds, bool(output_hidden_states))
        x, cache = out.last_hidden_state, out.cache
        logits = self.lm_head(x if not logits_to_keep else x[:, -logits_to_keep:]).float()  # (B, T, V)
        loss = None
        if labels is not None:  # labels (B, T) are shifted here: position t predicts token t+1
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache if use_cache else None,
                                      hidden_states=out.hidden_states)


AutoConfig.register("megalodon", MegalodonConfig, exist_ok=True)
AutoModelForCausalLM.register(MegalodonConfig, MegalodonForCausalLM, exist_ok=True)
