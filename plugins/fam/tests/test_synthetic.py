"""The toy passkey: the key sits in the first block, the answer is the value after it, nothing else tells."""

import pytest
import torch
from paperloom_fam.synthetic import FIRST_VALUE, KEY, QUERY, passkey_batch, vocab_size


def test_passkey_rows_hold_one_key_and_end_with_query_answer():
    b = passkey_batch(64, 40, 8, 16, 8, torch.Generator().manual_seed(0))
    ids, ans = b["input_ids"], b["answer"]
    assert ids.shape == (64, 40) and int(ids.max()) < vocab_size(8, 16)
    for row, a in zip(ids, ans):
        where = (row == KEY).nonzero().flatten().tolist()
        assert len(where) == 1 and where[0] < 7 and row[where[0] + 1] == a
        assert row[-2] == QUERY and row[-1] == a and FIRST_VALUE <= a < FIRST_VALUE + 8
        values = ((row >= FIRST_VALUE) & (row < FIRST_VALUE + 8)).sum()
        assert values == 2  # the key's value and the answer: filler carries no value tokens
    assert (b["labels"][:, :-1] == -100).all() and torch.equal(b["labels"][:, -1], ans)
    assert len(set(ans.tolist())) == 8  # every value occurs


def test_too_short_is_an_error():
    with pytest.raises(ValueError, match="length"):
        passkey_batch(2, 8, 8, 16, 8)
