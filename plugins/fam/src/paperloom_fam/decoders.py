"""Views of a Hugging Face decoder's pieces that the BSWA / FAM loop (fam.py) drives: embeddings, per-layer
PreLN + Q/K/V, output projection, FFN with residual, final norm + LM head. Nothing is copied: the view holds
the model's own modules, so LoRA (peft) layers swapped into them are used as well.

Supported layouts: Llama-family (`model.layers[i].self_attn.{q,k,v,o}_proj`, RMSNorm, RoPE; Llama, Mistral,
Qwen2/3 incl. grouped-query attention) and GPT-2 (`transformer.h[i].attn.c_attn`, LayerNorm, learned absolute
positions). Anything else is a one-line error naming its class.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperloom import UserError

LLAMA_LIKE = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")
GPT2_LIKE = ("GPT2LMHeadModel",)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaLayout:
    """Llama-family decoder: pre-RMSNorm, RoPE on q/k (any rope_type the model's rotary module knows), GQA."""

    kind = "llama"

    def __init__(self, model: nn.Module) -> None:
        inner = model.model
        self.model, self.inner = model, inner
        self.layers = list(inner.layers)
        cfg = model.config
        attn = self.layers[0].self_attn
        self.n_heads, self.head_dim = cfg.num_attention_heads, attn.head_dim
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.scaling = attn.scaling
        self.dropout = float(getattr(cfg, "attention_dropout", 0.0) or 0.0)
        self.hidden = cfg.hidden_size

    def embed(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return self.inner.embed_tokens(ids)  # (B, T, D); positions enter through RoPE

    def qkv(self, i: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """PreLN(h) -> q (B, H, T, hd), k and v (B, Hkv, T, hd), before RoPE."""
        layer = self.layers[i]
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        b, t, _ = x.shape
        q = attn.q_proj(x).view(b, t, -1, self.head_dim)
        k = attn.k_proj(x).view(b, t, -1, self.head_dim)
        v = attn.v_proj(x).view(b, t, -1, self.head_dim)
        if getattr(attn, "q_norm", None) is not None:  # Qwen3: per-head RMSNorm of q and k before RoPE
            q, k = attn.q_norm(q), attn.k_norm(k)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def rope(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x (B, H, T, hd) rotated to positions pos (T,) (may be negative: the initial FAM sits before token 0)."""
        cos, sin = self.inner.rotary_emb(x, pos[None].to(x.device))  # (1, T, hd)
        cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
        return x * cos + rotate_half(x) * sin

    def out(self, i: int, o: torch.Tensor) -> torch.Tensor:
        return self.layers[i].self_attn.o_proj(o)

    def ffn(self, i: int, h: torch.Tensor) -> torch.Tensor:
        layer = self.layers[i]
        return h + layer.mlp(layer.post_attention_layernorm(h))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(self.inner.norm(h))


class GPT2Layout:
    """GPT-2: pre-LayerNorm, fused c_attn (Conv1D), learned absolute positions added to the token embeddings."""

    kind = "gpt2"

    def __init__(self, model: nn.Module) -> None:
        cfg = model.config
        if getattr(cfg, "scale_attn_by_inverse_layer_idx", False) or getattr(cfg, "add_cross_attention", False):
            raise UserError("GPT-2 with scale_attn_by_inverse_layer_idx or cross-attention is not supported by the "
                            "FAM wrapper; use a plain GPT-2 checkpoint")
        self.model, self.inner = model, model.transformer
        self.layers = list(self.inner.h)
        self.n_heads = self.n_kv = cfg.n_head
        self.head_dim = cfg.n_embd // cfg.n_head
        self.scaling = self.head_dim**-0.5 if cfg.scale_attn_weights else 1.0
        self.dropout = float(cfg.attn_pdrop)
        self.hidden = cfg.n_embd
        self.n_positions = cfg.n_positions

    def embed(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        if int(pos.max()) >= self.n_positions or int(pos.min()) < 0:
            raise UserError(f"GPT-2 has {self.n_positions} learned positions but the stream reached position "
                            f"{int(pos.max())}; use a Llama-family (RoPE) base for longer streams, or shorter inputs")
        return self.inner.drop(self.inner.wte(ids) + self.inner.wpe(pos.to(ids.device))[None])

    def qkv(self, i: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layer = self.layers[i]
        b, t, _ = h.shape
        q, k, v = layer.attn.c_attn(layer.ln_1(h)).split(self.hidden, dim=2)
        return tuple(z.view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def rope(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return x  # absolute positions were added at the embedding level

    def out(self, i: int, o: torch.Tensor) -> torch.Tensor:
        attn = self.layers[i].attn
        return attn.resid_dropout(attn.c_proj(o))

    def ffn(self, i: int, h: torch.Tensor) -> torch.Tensor:
        layer = self.layers[i]
        return h + layer.mlp(layer.ln_2(h))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(self.inner.ln_f(h))


def layout_of(model: nn.Module) -> Any:
    """The layout view of an HF causal LM, or a UserError naming its unsupported class."""
    base = getattr(model, "get_base_model", lambda: model)()  # a peft model: the wrapped HF model
    name = type(base).__name__
    if name in LLAMA_LIKE or (hasattr(base, "model") and hasattr(base.model, "rotary_emb")
                              and hasattr(base.model, "layers") and hasattr(base.model.layers[0], "self_attn")
                              and hasattr(base.model.layers[0].self_attn, "q_proj")):
        return LlamaLayout(base)
    if name in GPT2_LIKE:
        return GPT2Layout(base)
    raise UserError(f"the FAM wrapper does not support {name} (its attention class "
                    f"{_attention_class(base)}); supported: Llama-family ({', '.join(LLAMA_LIKE)}) and GPT-2")


def _attention_class(model: nn.Module) -> str:
    for module in model.modules():
        if "attention" in type(module).__name__.lower():
            return type(module).__name__
    return "unknown"


def attend(layout: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
           training: bool) -> torch.Tensor:
    """Scaled dot-product attention with grouped-query heads; q (B, H, Tq, hd), k/v (B, Hkv, Tk, hd),
    mask (Tq, Tk) bool (True = attend) or None (full) -> (B, Tq, H*hd)."""
    if layout.n_kv != layout.n_heads:
        rep = layout.n_heads // layout.n_kv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=layout.dropout if training else 0.0,
                                       scale=layout.scaling)
    b, h, t, d = o.shape
    return o.transpose(1, 2).reshape(b, t, h * d)
