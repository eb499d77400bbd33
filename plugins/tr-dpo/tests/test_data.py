"""Preference data in users' formats, and clear one-line errors for malformed inputs."""

from __future__ import annotations

import gzip
import json

import pytest
from paperloom_tr_dpo import data as D
from paperloom_tr_dpo import synthetic

from paperloom import UserError

HH = [
    {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: fine, thanks",
     "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: go away"},
    {"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"},
]


def write_jsonl(path, rows, gz=False):
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_hh_dialogues_split_at_the_last_assistant_turn(tmp_path, gz):
    f = write_jsonl(tmp_path / ("train.jsonl.gz" if gz else "train.jsonl"), HH, gz)
    ds = D.read_hh(path=str(tmp_path))  # a folder holding train.jsonl[.gz]
    assert ds[0]["prompt"] == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:"
    assert ds[0]["chosen"] == " fine, thanks" and ds[0]["rejected"] == " go away"
    assert ds[1]["prompt"] + ds[1]["chosen"] == HH[1]["chosen"]
    assert len(D.read_hh(path=str(f), max_rows=1)) == 1


def test_hh_errors_name_the_line(tmp_path):
    f = write_jsonl(tmp_path / "hh.jsonl", [HH[0], {"chosen": HH[1]["chosen"]}])
    with pytest.raises(UserError, match=r"hh.jsonl line 2: missing field 'rejected'"):
        D.read_hh(path=str(f))
    row = {"chosen": "\n\nHuman: x\n\nAssistant:", "rejected": "\n\nHuman: x\n\nAssistant: y"}
    f = write_jsonl(tmp_path / "hh2.jsonl", [row])
    with pytest.raises(UserError, match=r"line 1: the final Assistant response in 'chosen' is empty"):
        D.read_hh(path=str(f))
    f = write_jsonl(tmp_path / "hh3.jsonl", [{"chosen": "no turns here", "rejected": "x"}])
    with pytest.raises(UserError, match="no '.*Assistant:' turn"):
        D.read_hh(path=str(f))


def test_tldr_rows_and_errors(tmp_path):
    good = [{"prompt": "POST: long text\nTL;DR:", "chosen": " short", "rejected": " wrong"}]
    ds = D.read_tldr(path=str(write_jsonl(tmp_path / "t.jsonl", good)))
    assert ds.column_names == ["prompt", "chosen", "rejected"] and len(ds) == 1
    with pytest.raises(UserError, match=r"line 1: missing field 'rejected'"):
        D.read_tldr(path=str(write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "chosen": "c"}])))
    with pytest.raises(UserError, match=r"line 2: field 'chosen' is empty"):
        D.read_tldr(path=str(write_jsonl(tmp_path / "b.jsonl", good + [{**good[0], "chosen": "  "}])))
    (tmp_path / "c.jsonl").write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": \n')
    with pytest.raises(UserError, match=r"c.jsonl line 2 is not valid JSON"):
        D.read_tldr(path=str(tmp_path / "c.jsonl"))
    (tmp_path / "d.jsonl").write_text("\n\n")
    with pytest.raises(UserError, match="holds no rows"):
        D.read_tldr(path=str(tmp_path / "d.jsonl"))
    with pytest.raises(UserError, match="does not exist"):
        D.read_tldr(path=str(tmp_path / "missing.jsonl"))


def test_unpaired_rows_for_kto(tmp_path):
    rows = [{"prompt": "p", "completion": " good", "label": True},
            {"prompt": "p", "completion": " bad", "label": False}]
    ds = D.read_unpaired(path=str(write_jsonl(tmp_path / "u.jsonl", rows)))
    assert D.is_unpaired(ds) and list(D.sft_rows(ds)["completion"]) == [" good"]
    with pytest.raises(UserError, match="label' = 'yes' must be true"):
        D.read_unpaired(path=str(write_jsonl(tmp_path / "v.jsonl", [{**rows[0], "label": "yes"}])))


def test_hf_datasets_on_disk(tmp_path):
    from datasets import Dataset, DatasetDict

    pairs = Dataset.from_list(synthetic.synthetic_pairs(6))
    DatasetDict({"train": pairs, "test": pairs.select(range(2))}).save_to_disk(str(tmp_path / "dd"))
    assert len(D.read_hf_disk(path=str(tmp_path / "dd"), split="test")) == 2
    with pytest.raises(UserError, match="splits .*'test', 'train'.*not 'validation'"):
        D.read_hf_disk(path=str(tmp_path / "dd"), split="validation")
    Dataset.from_list(HH).save_to_disk(str(tmp_path / "hh"))
    assert D.read_hf_disk(path=str(tmp_path / "hh"))[1]["chosen"] == " 4"
    Dataset.from_list([{"text": "x"}]).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(UserError, match="expected prompt/chosen/rejected"):
        D.read_hf_disk(path=str(tmp_path / "bad"))
    with pytest.raises(UserError, match="save_to_disk"):
        D.read_hf_disk(path=str(tmp_path / "nowhere"))


def test_datasets_build_by_name_through_the_context(tmp_path):
    from conftest import run_ctx

    ctx = run_ctx(tmp_path)
    f = write_jsonl(tmp_path / "train.jsonl", HH)
    assert len(ctx.build("tr-dpo:hh", path=str(f))) == 2
    train, test = ctx.build("tr-dpo:synthetic", n=8), ctx.build("tr-dpo:synthetic", n=8, split="test")
    assert len(train) == 8 and set(train.column_names) == set(D.PAIR_FIELDS)
    assert list(train["chosen"]) != list(test["chosen"])  # the test split draws other prompts and responses
