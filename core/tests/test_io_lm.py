"""Safe file helpers and the shared causal-LM helpers."""

import io
import math
import tarfile
import zipfile

import pytest
import torch

from paperloom import UserError
from paperloom.io import atomic_write_json, read_json, read_jsonl, safe_extract
from paperloom.lm import Blocks, embedded_corpus, pack, read_corpus, train_tokenizer, warmup_cosine


def test_atomic_json_and_torn_jsonl(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": 1.5})
    assert read_json(tmp_path / "m.json") == {"a": 1.5}
    (tmp_path / "m.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert read_jsonl(tmp_path / "m.jsonl") == [{"step": 1}, {"step": 2}]


def test_safe_extract_rejects_paths_outside_target(tmp_path):
    bad_zip = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UserError, match="outside"):
        safe_extract(bad_zip, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    bad_tar = tmp_path / "bad.tar"
    with tarfile.open(bad_tar, "w") as tf:
        info = tarfile.TarInfo("/abs/evil.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UserError, match="outside"):
        safe_extract(bad_tar, tmp_path / "out2")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("sub/ok.txt", "ok")
    assert (safe_extract(good, tmp_path / "out3") / "sub" / "ok.txt").read_text() == "ok"


def test_warmup_cosine_matches_the_formula():
    lr, min_lr = 1e-3, 1e-4
    assert warmup_cosine(0, 10, 100, lr, min_lr) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, lr, min_lr) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100, lr, min_lr) == pytest.approx(1.0)
    assert warmup_cosine(100, 10, 100, lr, min_lr) * lr == pytest.approx(min_lr)
    mid = 10 + 45
    assert warmup_cosine(mid, 10, 100, lr, min_lr) * lr == pytest.approx(
        min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi / 2))
    )


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
