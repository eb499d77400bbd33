"""The critic architecture (Sec. 4.4): a causal-LM backbone (usually a copy of the policy) with one MLP head
per critic, each giving a scalar per token; a state's value is the head's output at its last token.

``Critic(lm, heads=("value", "prm", "orm"))`` shares one backbone between the three heads (the demo);
``heads=("value",)`` etc. gives the paper's separate models. Saved as a folder: ``backbone/`` (an HF
checkpoint, `save_pretrained`) + ``heads.safetensors`` + ``critic.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from paperloom import UserError

HEADS = ("value", "prm", "orm")


def hidden_size(lm: Any) -> int:
    cfg = lm.config
    for name in ("hidden_size", "n_embd", "d_model"):
        if getattr(cfg, name, None):
            return int(getattr(cfg, name))
    raise UserError(f"critic backbone {type(lm).__name__}: its config names no hidden size")


class Critic(nn.Module):
    """AlphaLLM's value function / PRM / ORM: an LM with an MLP layer on top outputting a scalar per token."""

    def __init__(self, lm: Any, heads: tuple[str, ...] = HEADS) -> None:
        super().__init__()
        unknown = [h for h in heads if h not in HEADS]
        if unknown or not heads:
            raise UserError(f"critic heads {list(heads)}: expected a non-empty subset of {list(HEADS)}")
        self.lm = lm
        d = hidden_size(lm)
        self.heads = nn.ModuleDict({h: nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1)) for h in heads})

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Last-layer hidden states (B, T, d), through the backbone without its LM head where it has one."""
        base = getattr(self.lm, getattr(self.lm, "base_model_prefix", ""), None)
        if isinstance(base, nn.Module) and base is not self.lm:
            return base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        h = self.hidden(input_ids, attention_mask)  # (B, T, d)
        return {name: head(h).squeeze(-1) for name, head in self.heads.items()}  # logits (B, T) per head

    @torch.no_grad()
    def at_last(self, seqs: list[list[int]], pad_id: int = 0, batch_size: int = 64) -> dict[str, list[float]]:
        """sigmoid(head) at the last token of each sequence (right-padded batches)."""
        device = next(self.parameters()).device
        out: dict[str, list[float]] = {h: [] for h in self.heads}
        for k in range(0, len(seqs), batch_size):
            chunk = seqs[k:k + batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, s in enumerate(chunk):
                ids[i, :len(s)] = torch.tensor(s)
                mask[i, :len(s)] = 1
            logits = self(ids.to(device), mask.to(device))
            last = (mask.sum(1) - 1).to(device)
            for name, lg in logits.items():
                out[name].extend(torch.sigmoid(lg[torch.arange(len(chunk), device=device), last]).tolist())
        return out


def save_critic(critic: Critic, folder: str | Path, tokenizer: Any = None) -> Path:
    from paperloom_lm.hf import save_hf
    from safetensors.torch import save_file

    from paperloom.io import atomic_write_json

    folder = Path(folder)
    save_hf(critic.lm, folder / "backbone", tokenizer)
    save_file({k: v.detach().contiguous().cpu() for k, v in critic.heads.state_dict().items()},
              str(folder / "heads.safetensors"))
    atomic_write_json(folder / "critic.json", {"heads": list(critic.heads)})  # written last: marks it complete
    return folder


def load_critic(folder: str | Path) -> Critic:
    from paperloom_lm.hf import load_causal_lm

    from paperloom.checkpoint import load_safetensors

    folder = Path(folder).expanduser()
    meta = folder / "critic.json"
    if not meta.is_file():
        raise UserError(f"{folder} is not a critic folder (no critic.json); train one with alphallm:train-critics")
    heads = tuple(json.loads(meta.read_text())["heads"])
    critic = Critic(load_causal_lm(folder / "backbone"), heads)
    critic.heads.load_state_dict(load_safetensors(folder / "heads.safetensors"))
    return critic.eval()
