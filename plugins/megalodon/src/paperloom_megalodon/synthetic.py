"""The cross-chunk recall task of the demo (generated; nothing is downloaded).

A sequence of `n_chunks * chunk` tokens. A marker token sits at the *last* position of a random chunk k
(first_chunk <= k <= n_chunks - 3); the answer is the value token right after it, i.e. the first token
of chunk k+1; a query token ends the sequence (at least one full chunk later) and the model must
predict the answer after it. Every other position holds a value token (one of `n_values`), except a
few blank tokens that make the number of value positions a multiple of `n_values`.

Why this form: chunk-local attention cannot see the answer from the query, and since marker and answer
sit in different chunks, no chunk can bind them locally either. Every value occurs exactly equally
often in every sequence, so the bag of tokens says nothing about the answer and the first layer's
cumulative timestep-norm statistics (order-invariant sums) cannot carry it. CEMA carries ordered
information across chunk borders and solves it.

What remains for a model without CEMA is weak: after the marker at position p the cumulative norm
statistics shift by O(1/p), so a chunk can tell (faintly) that the marker ended the previous chunk,
tag its first token, and a deeper norm's statistics can carry that tag to the query. Learning this
takes long; by default the marker never ends chunk 0 (first_chunk=1), where 1/p is largest. Earlier
variants leaked much more: with marker and value in one chunk, or with i.i.d. values (whose counts
favour the answer), the no-CEMA model learnt the task from the cumulative norm statistics.

Token ids: 0 = pad/eos, 1 = marker, 2 = query, 3 = blank, 4 .. 4+n_values-1 = values.
"""

from __future__ import annotations

import torch

MARK, QUERY, BLANK, FIRST_VALUE = 1, 2, 3, 4


def vocab_size(n_values: int) -> int:
    return FIRST_VALUE + n_values


def recall_batch(n: int, n_chunks: int, chunk: int, n_values: int, generator: torch.Generator | None = None,
                 first_chunk: int = 1) -> dict[str, torch.Tensor]:
    """`n` sequences -> input_ids (n, L), labels (n, L) with -100 except the answer, answer (n,)."""
    if chunk < 2 or n_chunks - 3 < first_chunk or first_chunk < 0:
        raise ValueError(f"the recall task needs chunk >= 2 and n_chunks >= first_chunk + 3 (got chunk={chunk}, "
                         f"n_chunks={n_chunks}, first_chunk={first_chunk})")
    length = n_chunks * chunk
    n_slots = length - 3  # all but marker, query and the final answer position
    n_blank = n_slots % n_values
    if n_slots - n_blank < n_values:
        raise ValueError(f"{length} tokens leave no room for every one of {n_values} values")
    balanced = torch.arange(n_values).repeat((n_slots - n_blank) // n_values) + FIRST_VALUE
    ids = torch.empty(n, length, dtype=torch.long)
    answer = torch.empty(n, dtype=torch.long)
    for i in range(n):
        k = int(torch.randint(first_chunk, n_chunks - 2, (1,), generator=generator))  # marker chunk
        mark = (k + 1) * chunk - 1
        slots = torch.tensor([t for t in range(length - 2) if t != mark])
        row = torch.cat([balanced[torch.randperm(len(balanced), generator=generator)],
                         torch.full((n_blank,), BLANK)])
        if n_blank:  # blanks go anywhere but the answer position: shuffle, then swap one out of it if needed
            row = row[torch.randperm(len(row), generator=generator)]
            at = int((slots == mark + 1).nonzero())
            if row[at] == BLANK:
                j = int((row != BLANK).nonzero()[0])
                row[at], row[j] = row[j].clone(), row[at].clone()
        ids[i, slots] = row
        ids[i, mark] = MARK
        answer[i] = ids[i, mark + 1]
    ids[:, -2] = QUERY
    ids[:, -1] = answer  # the answer, predicted from the query position
    labels = torch.full_like(ids, -100)
    labels[:, -1] = answer
    return {"input_ids": ids, "labels": labels, "answer": answer}
