"""The toy passkey task of the demo (generated; nothing is downloaded).

    [filler ...] KEY v [filler ...] QUERY v          length L tokens; the key sits in the first block

The model must predict the value v (one of `n_values`) after QUERY at the end. Filler tokens are drawn
uniformly from their own `n_filler` ids, so nothing but the key says anything about v. When the query is
further from the key than BSWA's receptive field (layers x mem x block tokens plus the open block), BSWA
cannot see the key at all and is at chance (1 / n_values); FAM can carry v in its working memory.

Token ids: 0 = pad/eos, 1 = KEY, 2 = QUERY, 3 .. 3+n_values-1 = values, then the filler ids.
"""

from __future__ import annotations

import torch

KEY, QUERY, FIRST_VALUE = 1, 2, 3


def vocab_size(n_values: int, n_filler: int) -> int:
    return FIRST_VALUE + n_values + n_filler


def passkey_batch(n: int, length: int, n_values: int, n_filler: int, key_within: int,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """`n` sequences of `length` tokens; the key marker at a random position < key_within - 1 ->
    input_ids (n, L), labels (n, L) (-100 except the answer), answer (n,)."""
    if length < key_within + 2 or key_within < 2:
        raise ValueError(f"passkey: length={length} must be >= key_within + 2 and key_within={key_within} >= 2")
    ids = FIRST_VALUE + n_values + torch.randint(0, n_filler, (n, length), generator=generator)
    answer = FIRST_VALUE + torch.randint(0, n_values, (n,), generator=generator)
    where = torch.randint(0, key_within - 1, (n,), generator=generator)
    rows = torch.arange(n)
    ids[rows, where], ids[rows, where + 1] = KEY, answer
    ids[:, -2], ids[:, -1] = QUERY, answer
    labels = torch.full_like(ids, -100)
    labels[:, -1] = answer
    return {"input_ids": ids, "labels": labels, "answer": answer}
