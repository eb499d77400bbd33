"""Fine-tuning TransformerFAM as the paper does: LoRA through peft or full fine-tuning, on the core's
Lightning path (paperloom_lm's `CausalLMModule`), with the paper's two training-only tricks:

- random state passing: with probability `state_passing` (paper: 0.8) a step starts from the FAM the previous
  step ended with (detached) instead of F_0, so the model learns to read a FAM built over a long history;
- random position offset: each step's stream starts at a random position in [0, max_position_offset], so
  RoPE positions far beyond the training length are seen.
"""

from __future__ import annotations

from typing import Any

import torch
from paperloom_lm.causal_lm import CausalLMModule

from paperloom import UserError

LORA_TARGETS = {"llama": ["q_proj", "k_proj", "v_proj", "o_proj"], "gpt2": ["attn.c_attn", "attn.c_proj"]}


class FAMModule(CausalLMModule):
    """CausalLMModule whose only change is the training step: random state passing and position offsets."""

    def __init__(self, model: torch.nn.Module, optim: Any, total_steps: int, state_passing: float = 0.0,
                 max_position_offset: int = 0, seed: int = 0) -> None:
        super().__init__(model, optim, total_steps)
        self.state_passing, self.max_position_offset = state_passing, max_position_offset
        self.gen = torch.Generator().manual_seed(seed)
        self.previous: list | None = None  # F per layer at the end of the previous step (detached)

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        ids = batch["input_ids"]
        offset = int(torch.randint(0, self.max_position_offset + 1, (1,), generator=self.gen))
        passed = (self.previous is not None and self.previous[0].shape[0] == ids.shape[0]
                  and float(torch.rand((), generator=self.gen)) < self.state_passing)
        out = self.model(input_ids=ids, labels=batch["labels"], use_cache=self.state_passing > 0,
                         position_offset=offset, initial_fam=self.previous if passed else None)
        if out.cache is not None and out.cache.state.layers[0].fam is not None:
            self.previous = [st.fam.detach() for st in out.cache.state.layers]
        self.log("train_loss", out.loss, prog_bar=True)
        return out.loss

    # The carried FAM and the draws of passing/offsets are training state: a resumed run continues from them
    # (without this, --resume restarts from F_0 with fresh draws and logs different losses than an unbroken run).
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["fam_state_passing"] = {"previous": self.previous, "generator": self.gen.get_state()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("fam_state_passing")
        if saved is not None:
            self.previous = saved["previous"]
            self.gen.set_state(saved["generator"])


def add_lora(model: Any, rank: int, alpha: float, dropout: float, targets: list[str]) -> Any:
    """peft LoRA on the base decoder's projections; the FAM prompt stays trainable (it is new)."""
    from peft import LoraConfig, get_peft_model

    from .decoders import layout_of

    kind = layout_of(model.base).kind
    targets = targets or LORA_TARGETS[kind]
    try:
        peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                                                      target_modules=targets, fan_in_fan_out=kind == "gpt2"))
    except ValueError as exc:
        raise UserError(f"lora.targets = {targets}: {str(exc).splitlines()[0][:160]}; name modules of the base "
                        f"decoder (default for {kind}: {LORA_TARGETS[kind]})") from None
    if model.fam_prompt is not None:
        model.fam_prompt.requires_grad_(True)
    return peft_model


def merge_lora(model: Any) -> Any:
    """The plain FAM model with LoRA weights merged (what export saves)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
