"""The generated cross-chunk recall task: marker at a chunk's end, balanced values, labels only at the answer."""

import torch
from paperloom_megalodon.synthetic import MARK, QUERY, recall_batch


def test_recall_task_data():
    b = recall_batch(64, 5, 8, 8, torch.Generator().manual_seed(0))
    ids = b["input_ids"]
    assert ids.shape == (64, 40) and bool((ids[:, -2] == QUERY).all())
    marks = (ids == MARK).nonzero()
    assert len(marks) == 64 and bool(((marks[:, 1] + 1) % 8 == 0).all()) and bool((marks[:, 1] >= 15).all())
    assert bool((ids[marks[:, 0], marks[:, 1] + 1] == b["answer"]).all())
    assert bool((b["labels"][:, :-1] == -100).all()) and torch.equal(b["labels"][:, -1], b["answer"])
    # every value equally often in every sequence: the bag of tokens says nothing about the answer
    counts = torch.stack([torch.bincount(row[:-2], minlength=12)[4:] for row in ids])
    assert bool((counts == counts[0, 0]).all())
