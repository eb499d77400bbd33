"""The tasks on real on-disk formats: train (CSV) -> a model folder -> filter (webdataset shards) and evaluate
(ImageFolder zero-shot, retrieval, linear probe); filtering keeps exactly the top x%; resume; bad input."""

import json
import random

import pytest
import reference as ref
from paperloom_clip.filtering import keep_top

from paperloom import UserError
from paperloom.runner import execute

TINY = ["trainer={max_steps: 3, batch_size: 8, checkpoint_every: 1, log_every: 1, val_every: 1000}",
        "model_args={arch: ViT-Ti-4, vision: {image_size: 16, num_hidden_layers: 1}, text: {num_hidden_layers: 1}}",
        "vocab_size=128"]


@pytest.mark.parametrize("seed,n,fraction", [(0, 10, 0.3), (1, 7, 0.5), (2, 100, 0.1), (3, 33, 1.0), (4, 5, 0.01)])
def test_keep_top_is_exactly_the_top_fraction(seed, n, fraction):
    rnd = random.Random(seed)
    scores = [round(rnd.uniform(-1, 1), 1) for _ in range(n)]  # rounded: many ties
    kept = keep_top(scores, fraction)
    assert kept == ref.top_fraction(scores, fraction)
    assert len(kept) == {(10, 0.3): 3, (7, 0.5): 4, (100, 0.1): 10, (33, 1.0): 33, (5, 0.01): 1}[(n, fraction)]
    rest = [s for i, s in enumerate(scores) if i not in kept]
    assert not rest or min(scores[i] for i in kept) >= max(rest)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shards):
    _, paths = shards
    out = tmp_path_factory.mktemp("train") / "run"
    _, metrics = execute("clip:train", out=out, device="cpu", plot=False,
                         overrides=[f"data.path={paths['csv']}", *TINY])
    return out, metrics


def test_train_writes_a_loadable_model(trained):
    from paperloom_clip.model import load_clip

    out, metrics = trained
    assert metrics["steps"] == 3 and metrics["train_loss"] > 0
    model = load_clip(out / "model")
    assert model.is_vit and model.image_size == 16 and (out / "model" / "tokenizer.json").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()


def test_train_resumes_from_its_checkpoint(trained, tmp_path):
    import shutil

    out, _ = trained
    run = tmp_path / "again"
    shutil.copytree(out, run)
    (run / ".lock").unlink(missing_ok=True)
    _, metrics = execute("clip:train", out=run, resume=True, device="cpu", plot=False,
                         overrides=["trainer.max_steps=5"])
    assert metrics["steps"] == 5 and "resuming from" in (run / "run.log").read_text()


def test_train_other_strategies_and_a_resnet_on_shards(shards, tmp_path):
    _, paths = shards
    shards_glob = str(paths["wds"]).replace("000000", "{000000..000002}")
    for name, extra in (("slip", ["strategy.ssl_mlp_dim=16", "strategy.ssl_out_dim=8"]), ("flip", []),
                        ("dataaug", [])):
        _, m = execute("clip:train", out=tmp_path / name, device="cpu", plot=False,
                       overrides=[f"data.path={shards_glob}", f"strategy.name={name}", *TINY, *extra])
        assert m["steps"] == 3
    _, m = execute("clip:train", out=tmp_path / "rn", device="cpu", plot=False,
                   overrides=[f"data.path={paths['jsonl']}", *TINY[:1], "model_args={arch: RN-Ti, vision: "
                              "{image_size: 16}}", "vocab_size=128"])
    assert m["steps"] == 3 and (tmp_path / "rn" / "model" / "clip_config.json").is_file()


def test_filter_keeps_the_top_fraction_of_shards(trained, shards, tmp_path):
    _, paths = shards
    out, _ = trained
    run = tmp_path / "filter"
    _, m = execute("clip:filter", out=run, device="cpu", plot=False,
                   overrides=[f"scorer={out / 'model'}", "keep_fraction=0.25",
                              f"data.path={str(paths['wds']).replace('000000', '{000000..000002}')}"])
    scores = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    kept = [json.loads(line) for line in (run / "kept.jsonl").read_text().splitlines()]
    assert m["pairs"] == 24 and m["kept"] == len(kept) == 6
    by_score = sorted(scores, key=lambda r: -r["score"])
    assert sorted(r["key"] for r in kept) == sorted(r["key"] for r in by_score[:6])
    assert m["threshold"] == pytest.approx(min(r["score"] for r in kept))
    assert (run / "scores.png").is_file()
    from paperloom_clip.data import open_pairs

    refiltered = list(open_pairs(str(run / "shards" / "filtered-000000.tar"), image_size=16))
    assert sorted(it["key"] for it in refiltered) == sorted(r["key"] for r in kept)


def test_filter_csv_writes_a_readable_jsonl(trained, shards, tmp_path):
    from paperloom_clip.data import open_pairs

    _, paths = shards
    out, _ = trained
    run = tmp_path / "f"
    execute("clip:filter", out=run, device="cpu", plot=False,
            overrides=[f"scorer={out / 'model'}", "keep_fraction=0.5", f"data.path={paths['csv']}"])
    kept = open_pairs(str(run / "kept.jsonl"), image_size=16)
    assert len(kept) == 12


def test_evaluate_zero_shot_retrieval_and_probe(trained, shards, tmp_path):
    from paperloom_clip.synthetic import write_image_folder

    _, paths = shards
    out, _ = trained
    folder = write_image_folder(tmp_path / "test", 2, 16, seed=3)
    _, m = execute("clip:evaluate", out=tmp_path / "ev", device="cpu", plot=False,
                   overrides=[f"model={out / 'model'}", f"zero_shot={folder}", f"retrieval.path={paths['tsv']}",
                              f"probe_train={folder}", f"probe_test={folder}"])
    assert 0 <= m["zero_shot_top1"] <= m["zero_shot_top5"] <= 1
    assert m["image_to_text_r@1"] <= m["image_to_text_r@5"] <= m["image_to_text_r@10"]
    assert 0 <= m["linear_probe_acc"] <= 1
    with pytest.raises(UserError, match="nothing to evaluate"):
        execute("clip:evaluate", out=tmp_path / "ev2", device="cpu", plot=False, overrides=[f"model={out / 'model'}"])
    with pytest.raises(UserError, match="missing"):
        execute("clip:evaluate", out=tmp_path / "ev3", device="cpu", plot=False,
                overrides=[f"model={tmp_path / 'missing'}", f"zero_shot={folder}"])


def test_demo_rejects_bad_sizes(tmp_path):
    with pytest.raises(UserError, match="correct pairs"):
        execute("clip:demo", out=tmp_path / "d", device="cpu", plot=False, smoke=True, overrides=["clean=40"])
    with pytest.raises(UserError, match="parts"):
        execute("clip:demo", out=tmp_path / "e", device="cpu", plot=False, smoke=True, overrides=["parts=[speed]"])


@pytest.mark.cross_plugin
def test_contracts_refuse_another_plugins_model_and_accept_ours_by_name(tmp_path, trained, shards):
    """The core checks contracts across plugins: a causal LM (lm:gpt2) is no image-text encoder; clip's own
    components compose by name (the model field of evaluate given clip:model with builder arguments)."""
    pytest.importorskip("paperloom_lm")
    with pytest.raises(UserError, match="image-text-encoder"):
        execute("clip:evaluate", out=tmp_path / "x", device="cpu", plot=False,
                overrides=["model=lm:gpt2", "zero_shot=/nonexistent"])
    from paperloom_clip.synthetic import write_image_folder

    folder = write_image_folder(tmp_path / "zs", 1, 32, seed=0)
    _, m = execute("clip:evaluate", out=tmp_path / "y", device="cpu", plot=False,
                   overrides=["model=clip:model", "model_args={arch: RN-Ti}", f"zero_shot={folder}"])
    assert 0 <= m["zero_shot_top1"] <= 1


def test_filter_scores_the_same_over_worker_processes(trained, shards, tmp_path):
    """Scoring spans through the core's map executor: 2 workers give the single process's scores and kept set."""
    _, paths = shards
    out, _ = trained
    runs = {}
    for workers in (1, 2):
        run = tmp_path / f"w{workers}"
        execute("clip:filter", out=run, device="cpu", plot=False, workers=workers,
                overrides=[f"scorer={out / 'model'}", "keep_fraction=0.5", f"data.path={paths['csv']}",
                           "batch_size=4", "span_batches=1", f"processes={workers}"])  # 6 spans of 4 pairs
        runs[workers] = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    a, b = runs[1], runs[2]
    assert [r["path"] for r in a] == [r["path"] for r in b] and len(a) == 24
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 1e-6
