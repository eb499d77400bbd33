"""Plain reference implementations the parity tests compare against."""

from __future__ import annotations

from typing import Any

import torch


@torch.no_grad()
def loglikelihood_token_by_token(model: Any, tokenizer: Any, context: str, continuation: str) -> float:
    """log p(continuation | context) as the sum of next-token log-probs, one forward pass per token."""
    ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    total = 0.0
    for t in tokenizer(continuation, add_special_tokens=False)["input_ids"]:
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        total += float(torch.log_softmax(logits, -1)[t])
        ids = ids + [t]
    return total
