"""TransformerFAM (Hwang et al., arXiv 2404.09173) as a Hugging Face causal LM that wraps any supported
decoder (decoders.py) without changing its weights: `FAMConfig` / `FAMForCausalLM`, model type "fam".

    F_0       = learned prompt (fam_len, D) passed up the layers (B.1)        the only new parameter
    for each block of `block_size` tokens, each layer:  BSWA + FAM (fam.py)  -> hidden (B, T, D)
    logits    = base final norm + LM head (block tokens only)

`save_pretrained` / `from_pretrained` round-trip the base's config and weights with the FAM settings.
`forward(..., use_cache=True)` returns a `FAMCache` (the streaming state: constant size), so `generate()`
feeds one token at a time without re-encoding; `output_fam_states=True` returns F after each completed block.
Importing this module registers the "fam" model type with the Auto classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .decoders import layout_of
from .fam import POSITION_MODES, FAMState, Settings, initial_state, run


class FAMConfig(PretrainedConfig):
    """The base decoder's config (`base`, a dict with its model_type) plus the FAM settings: `block_size`
    tokens per block, `mem_segments` previous blocks of K/V each token sees (BSWA memory), `fam_len` FAM
    tokens (0 = BSWA), `fam_positions` (last | float | zero, B.2), `zero_first_residual` (B.1)."""

    model_type = "fam"

    def __init__(self, base: dict | None = None, block_size: int = 1024, mem_segments: int = 3, fam_len: int = 64,
                 fam_positions: str = "last", zero_first_residual: bool = True, fam_init_std: float = 0.02,
                 **kwargs: Any) -> None:
        if block_size < 1 or mem_segments < 0 or fam_len < 0:
            raise ValueError(f"block_size={block_size} must be >= 1, mem_segments={mem_segments} and "
                             f"fam_len={fam_len} >= 0")
        if fam_positions not in POSITION_MODES:
            raise ValueError(f"fam_positions={fam_positions!r}; expected one of {POSITION_MODES}")
        self.base = dict(base or {"model_type": "llama"})
        self.block_size, self.mem_segments, self.fam_len = block_size, mem_segments, fam_len
        self.fam_positions, self.zero_first_residual = fam_positions, zero_first_residual
        self.fam_init_std = fam_init_std
        for key in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"):
            kwargs.setdefault(key, self.base.get(key))
        kwargs.setdefault("tie_word_embeddings", False)  # the base ties its own head inside
        super().__init__(**kwargs)

    def base_config(self) -> PretrainedConfig:
        cfg = dict(self.base)
        return AutoConfig.for_model(cfg.pop("model_type"), **cfg)

    def settings(self) -> Settings:
        return Settings(self.block_size, self.mem_segments, self.fam_len, self.fam_positions, self.zero_first_residual)


class FAMCache:
    """The streaming state between calls (generate()): per layer the memory-segment K/V, the open block's K/V and
    F; its size does not grow with the stream (O(layers x ((mem + 1) x block + fam_len)))."""

    is_compileable = False

    def __init__(self, state: FAMState) -> None:
        self.state = state

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.state.seen

    @property
    def is_linear(self) -> list[bool]:  # generate(): a recurrent state, nothing to slice by length
        return [True] * len(self.state.layers)

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        self.state.index_select(beam_idx)


@dataclass
class FAMOutput(CausalLMOutputWithPast):
    fam_states: tuple | None = None  # per completed block: (layers, B, fam_len, D)


class FAMForCausalLM(PreTrainedModel, GenerationMixin):
    """A decoder run as TransformerFAM (or BSWA with fam_len=0); `base` is the wrapped HF causal LM."""

    config_class = FAMConfig
    base_model_prefix = "fam"
    _is_stateful = True
    _supports_sdpa = True

    def __init__(self, config: FAMConfig, base: nn.Module | None = None) -> None:
        super().__init__(config)
        self.base = base if base is not None else AutoModelForCausalLM.from_config(config.base_config())
        d = self.base.get_input_embeddings().embedding_dim
        self.fam_prompt = nn.Parameter(torch.randn(config.fam_len, d) * config.fam_init_std) if config.fam_len else None
        self.post_init()
        layout_of(self.base)  # fail early, naming the class, for an unsupported decoder

    @classmethod
    def wrap(cls, base: nn.Module, **settings: Any) -> FAMForCausalLM:
        """Wrap a built / loaded HF causal LM (its weights are kept as they are)."""
        base_cfg = base.config.to_dict()
        layout_of(base)
        model = cls(FAMConfig(base=base_cfg, **settings), base=base)
        return model.to(base.dtype)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:  # we bring our own cache (the FAM state)
        return False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if module is self and self.fam_prompt is not None:
            self.fam_prompt.normal_(0.0, self.config.fam_init_std)
        elif module is not self and hasattr(self.base, "_init_weights") and self.base is not None:
            self.base._init_weights(module)

    def get_input_embeddings(self) -> nn.Module:
        return self.base.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.base.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.base.get_output_embeddings()

    def new_state(self, batch: int, position_offset: int = 0, initial_fam: list | None = None) -> FAMState:
        return initial_state(layout_of(self.base), self.config.settings(), self.fam_prompt, batch, position_offset,
                             self.training, initial_fam)

    def forward(self, input_ids=None, attention_mask=None, labels=None, cache=None, past_key_values=None,
                use_cache=None, output_fam_states=False, position_offset: int = 0, initial_fam=None,
                logits_to_keep: int = 0, return_dict=None, **kwargs: Any) -> FAMOutput:
        cache = cache if cache is not None else past_key_values
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            raise ValueError("FAMForCausalLM streams every row in lockstep: padding (attention_mask zeros) is not "
                             "supported; batch sequences of equal length")
        if use_cache is None:
            use_cache = cache is not None
        layout = layout_of(self.base)
        state = cache.state if cache is not None else self.new_state(input_ids.shape[0], position_offset, initial_fam)
        h = run(layout, self.config.settings(), input_ids, state, self.training, keep_fams=output_fam_states)
        logits = layout.head(h if not logits_to_keep else h[:, -logits_to_keep:])  # (B, T, V)
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        loss = None
        if labels is not None:  # labels (B, T) shifted here: position t predicts token t+1
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        fams = tuple(state.fam_history) if output_fam_states else None
        state.fam_history = []
        return FAMOutput(loss=loss, logits=logits, cache=FAMCache(state) if use_cache else None,
                         fam_states=fams)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, cache=None, attention_mask=None,
                                      **kwargs: Any) -> dict:
        cache = cache if cache is not None else past_key_values
        if cache is not None and cache.get_seq_length() > 0:
            input_ids = input_ids[:, cache.get_seq_length():]  # only the tokens the state has not seen
        return {"input_ids": input_ids, "cache": cache, "use_cache": True}

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
        model_kwargs["cache"] = outputs.cache
        return model_kwargs


AutoConfig.register("fam", FAMConfig, exist_ok=True)
AutoModelForCausalLM.register(FAMConfig, FAMForCausalLM, exist_ok=True)
