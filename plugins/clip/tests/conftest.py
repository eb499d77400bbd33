import pytest
import torch


@pytest.fixture(scope="session")
def tokenizer():
    from paperloom_clip.components import default_tokenizer

    return default_tokenizer()


@pytest.fixture
def vit(tokenizer):
    from paperloom_clip.components import build_model

    torch.manual_seed(0)
    return build_model(None, "ViT-Ti-4", tokenizer=tokenizer, vision={"image_size": 16, "num_hidden_layers": 1},
                       text={"num_hidden_layers": 1})


@pytest.fixture
def batch(tokenizer):
    from paperloom_clip.synthetic import make_pairs
    from paperloom_clip.tokenizer import tokenize

    pairs = make_pairs(6, 16, seed=1)
    b = tokenize(tokenizer, pairs["texts"], 16)
    b["image"] = torch.from_numpy(pairs["images"]).permute(0, 3, 1, 2).float() / 255
    b["view1"], b["view2"] = b["image"].flip(-1), b["image"].flip(-2)
    return b


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    """The same 24 generated pairs written as CSV, TSV, JSONL and webdataset shards."""
    from paperloom_clip.synthetic import make_pairs, write_pairs

    root = tmp_path_factory.mktemp("pairs")
    pairs = make_pairs(24, 16, noise=0.5, seed=2)
    paths = {fmt: write_pairs(root / fmt, pairs, fmt, per_shard=10) for fmt in ("csv", "tsv", "jsonl", "wds")}
    return pairs, paths


@pytest.fixture
def ctx(tmp_path):
    from paperloom.context import Run

    return Run(out=tmp_path, plugin="clip", task="test")
