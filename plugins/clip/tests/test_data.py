"""The readers: CSV, TSV, JSONL and webdataset shards give the same pairs; bad inputs are one-line errors."""

import json

import pytest
import torch
from paperloom_clip.data import image_folder, open_pairs, shard_texts, shard_urls, to_tensor

from paperloom import UserError


def items_of(ds):
    return sorted(((it["text"], it["image"]) for it in ds), key=lambda t: t[0] + str(float(t[1].sum())))


def test_every_format_reads_the_same_pairs(shards):
    pairs, paths = shards
    expected = torch.from_numpy(pairs["images"]).permute(0, 3, 1, 2).float() / 255
    csv = open_pairs(str(paths["csv"]), image_size=16)
    assert len(csv) == 24 and csv.texts == pairs["texts"]
    torch.testing.assert_close(torch.stack([csv[i]["image"] for i in range(24)]), expected)  # PNG is lossless
    ref = items_of(csv)
    for fmt in ("tsv", "jsonl"):
        got = items_of(open_pairs(str(paths[fmt]), image_size=16))
        assert [t for t, _ in got] == [t for t, _ in ref]
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got, ref))
    urls = shard_urls(str(paths["wds"]).replace("shard-000000.tar", "shard-{000000..000002}.tar"))
    assert len(urls) == 3 and sorted(shard_texts(urls)) == sorted(pairs["texts"])
    wds = items_of(open_pairs(",".join(urls), image_size=16))
    assert [t for t, _ in wds] == [t for t, _ in ref]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(wds, ref))


def test_webdataset_streams_with_workers(shards):
    _, paths = shards
    ds = open_pairs(str(paths["wds"]).replace("000000", "{000000..000002}"), image_size=16)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2, collate_fn=list)
    keys = [it["key"] for batch in loader for it in batch]
    assert sorted(keys) == [f"{i:08d}" for i in range(24)]  # each shard read once across the workers


def test_resize_and_center_crop():
    from PIL import Image

    img = Image.new("RGB", (40, 20), (255, 0, 0))
    x = to_tensor(img, 16)
    assert x.shape == (3, 16, 16) and float(x[0].min()) == pytest.approx(1.0) and float(x[1].max()) == 0


def test_bad_inputs_are_one_line_errors(tmp_path, shards):
    _, paths = shards
    with pytest.raises(UserError, match="does not exist"):
        open_pairs(str(tmp_path / "nope.csv"))
    with pytest.raises(UserError, match="format"):
        open_pairs(str(tmp_path / "pairs.parquet"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"filepath": "a.png", "title": "x"}) + "\n{oops\n")
    with pytest.raises(UserError, match="line 2"):
        open_pairs(str(bad))
    with pytest.raises(UserError, match="no column 'caption'"):
        open_pairs(str(paths["csv"]), caption_key="caption")
    empty = tmp_path / "empty.csv"
    empty.write_text("filepath,title\n")
    with pytest.raises(UserError, match="no pairs"):
        open_pairs(str(empty))
    missing = tmp_path / "missing.csv"
    missing.write_text("filepath,title\nnot-there.png,a cat\n")
    with pytest.raises(UserError, match="not-there.png does not exist"):
        open_pairs(str(missing), image_size=16)[0]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    broken = tmp_path / "broken.csv"
    broken.write_text("filepath,title\nbroken.png,a cat\n")
    with pytest.raises(UserError, match="cannot be read"):
        open_pairs(str(broken), image_size=16)[0]
    with pytest.raises(UserError, match="does not exist"):
        shard_urls(str(tmp_path / "shard-{0..3}.tar"))
    with pytest.raises(UserError, match="ImageFolder"):
        image_folder(str(tmp_path / "none"), 16)
