"""Text data: the embedded corpus, local formats, the tokenizer, packing, splits and data budgets."""

import pytest
import torch
from paperloom_lm.config import TextDataConfig
from paperloom_lm.data import Blocks, check_vocab, embedded_corpus, pack, read_corpus, text_data, train_tokenizer

from paperloom import UserError


def test_corpus_tokenizer_and_packing(tmp_path):
    texts = embedded_corpus(max_chars=30000)
    assert len(texts) > 5 and all(len(t) > 80 for t in texts)
    assert texts == embedded_corpus(max_chars=30000)  # deterministic
    tok = train_tokenizer(texts, 300, tmp_path / "tok")
    assert tok.decode(tok("def pack(x):")["input_ids"]) == "def pack(x):"
    rows = pack(texts, tok, 16)
    assert rows.shape[1] == 16 and rows.dtype == torch.long
    n_tokens = sum(len(ids) + 1 for ids in tok(texts, add_special_tokens=False)["input_ids"])
    assert rows.shape[0] == n_tokens // 16
    item = Blocks(rows)[0]
    assert torch.equal(item["input_ids"], item["labels"])


def test_read_corpus_formats_and_errors(tmp_path):
    (tmp_path / "a.txt").write_text("first doc\n\nsecond doc")
    (tmp_path / "b.jsonl").write_text('{"text": "third"}\n')
    assert read_corpus(str(tmp_path)) == ["first doc", "second doc", "third"]
    (tmp_path / "c.jsonl").write_text('{"text": "x"}\n{"txt": "y"}\n')
    with pytest.raises(UserError, match=r"c.jsonl line 2 has no string field 'text'"):
        read_corpus(str(tmp_path / "c.jsonl"))
    with pytest.raises(UserError, match="does not exist"):
        read_corpus(str(tmp_path / "nope"))


def test_splits_are_disjoint_and_the_data_budget_caps_training_tokens(tmp_path):
    cfg = TextDataConfig(max_chars=20000, vocab_size=300, block_size=16, val_fraction=0.2)
    tok, train, val = text_data(cfg, tmp_path, seed=0)
    assert train.tokenizer is tok and val.tokenizer is tok
    rows = {tuple(r.tolist()) for r in train.rows}
    assert not rows & {tuple(r.tolist()) for r in val.rows}
    _, train2, _ = text_data(TextDataConfig(**{**cfg.__dict__, "train_tokens": 100}), None, seed=0)
    assert len(train2) == 7 and torch.equal(train2.rows, train.rows[:7])  # ceil(100 / 16) blocks, same order
    with pytest.raises(UserError, match="data.train_tokens = 10000000 exceeds"):
        text_data(TextDataConfig(**{**cfg.__dict__, "train_tokens": 10_000_000}), None, seed=0)


def test_check_vocab_names_the_fix():
    tok = train_tokenizer(embedded_corpus(max_chars=5000), 300)
    small = torch.nn.Module()
    small.get_input_embeddings = lambda: torch.nn.Embedding(10, 2)
    with pytest.raises(UserError, match=r"m: the model has 10 token embeddings but the tokenizer has \d+; use the"):
        check_vocab(small, tok, "m")
