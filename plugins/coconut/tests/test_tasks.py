"""Tasks end to end on generated data: evaluate (folders, models, shards), merge, convert, visualize,
train + resume (the shared training loop), and conformance."""

import json

import numpy as np
import pytest
from paperloom_coconut.panoptic import read_ids, write_ids

from paperloom import UserError
from paperloom.runner import execute
from paperloom.testing import assert_conforms


def _root(mini):
    return [f"data.root={mini['fine']}", "data.splits=[s]"]


@pytest.fixture(scope="module")
def shifted(mini, tmp_path_factory):
    """A prediction folder: the GT of split s shifted by one pixel (partly matching, nontrivial)."""
    out = tmp_path_factory.mktemp("pred")
    data = json.loads((mini["fine"] / "annotations" / "panoptic_train2017.json").read_text())
    anns = []
    for a in data["annotations"]:
        ids = np.roll(read_ids(mini["fine"] / "panoptic_train2017" / a["file_name"]), 1, axis=1)
        write_ids(out / "png" / a["file_name"], ids)
        present = set(np.unique(ids).tolist())
        anns.append({**a, "segments_info": [dict(s, score=0.5) for s in a["segments_info"] if s["id"] in present]})
    (out / "pred.json").write_text(json.dumps({"annotations": anns}))
    return [f"predictions={out / 'pred.json'}", f"predictions_dir={out / 'png'}"]


def test_ground_truth_folder_scores_one(mini, tmp_path):
    gt = [f"predictions={mini['fine'] / 'annotations' / 'panoptic_train2017.json'}",
          f"predictions_dir={mini['fine'] / 'panoptic_train2017'}"]
    _, m = execute("coconut:evaluate", overrides=_root(mini) + gt + ["processes=1"], out=tmp_path / "gt", device="cpu",
                   plot=False)
    assert m["pq"] == 1.0 and m["miou"] == 1.0 and m["ap"] == pytest.approx(1.0) and m["box_ap"] == pytest.approx(1.0)


def test_shards_merge_exactly(mini, shifted, tmp_path):
    _, whole = execute("coconut:evaluate", overrides=_root(mini) + shifted + ["processes=2"], out=tmp_path / "all",
                       device="cpu", plot=False)
    assert 0 < whole["pq"] < 1
    for i in range(3):
        execute("coconut:evaluate", overrides=_root(mini) + shifted + [f"shard={i}/3", "processes=1"],
                out=tmp_path / f"s{i}", device="cpu", plot=False)
    with pytest.raises(UserError, match="missing \\[2\\]"):
        execute("coconut:merge", overrides=[f"parts=[{tmp_path / 's0'}, {tmp_path / 's1'}]"], out=tmp_path / "bad",
                device="cpu", plot=False)
    _, merged = execute("coconut:merge", overrides=[f"parts=['{tmp_path}/s*']"], out=tmp_path / "m", device="cpu",
                        plot=False)
    for k, v in whole.items():
        if not k.startswith("shard_"):
            assert merged[k] == v, k  # bit-identical, AP included
    assert json.loads((tmp_path / "m" / "per_class.json").read_text()) == json.loads(
        (tmp_path / "all" / "per_class.json").read_text())


def test_convert_and_visualize_tasks(mini, shifted, tmp_path):
    _, m = execute("coconut:convert", overrides=_root(mini) + ["to=instances"], out=tmp_path / "c", device="cpu",
                   plot=False)
    assert (tmp_path / "c" / "instances" / "instances.json").is_file() and m["instances"] > 0
    _, m = execute("coconut:visualize", overrides=_root(mini) + shifted + ["images=2"], out=tmp_path / "v",
                   device="cpu", plot=False)
    assert len(list((tmp_path / "v" / "overlays").glob("*.png"))) == 2
    assert len(list((tmp_path / "v" / "errors").glob("*.png"))) == 2 and m["vis_tp"] > 0


def test_train_resumes_and_evaluates(mini, tmp_path):
    args = _root(mini) + ["steps=2", "batch_size=2", "model_args={width: 8}", "checkpoint_every=1", "data.limit=4"]
    out, m = execute("coconut:train", overrides=args, out=tmp_path / "t", device="cpu", plot=False)
    assert m["steps"] == 2.0
    import torch

    first = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]
    execute("coconut:train", overrides=["steps=4"], out=tmp_path / "t", resume=True, device="cpu", plot=False)
    # --resume continues from the saved step (here extended to 4 steps with an override)
    later = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert later["step"] == 4 and "resumed at step 2" in (out / "run.log").read_text()
    assert any(not torch.equal(first[k], later["model"][k]) for k in first)
    _, ev = execute("coconut:evaluate", overrides=[f"data.root={mini['fine']}", "data.splits=[relabeled-val]",
                                                   f"checkpoint={out / 'checkpoints' / 'last.pt'}", "data.limit=3"],
                    out=tmp_path / "e", device="cpu", plot=False)
    assert ev["images"] == 3.0 and 0.0 <= ev["pq"] <= 1.0


def test_train_loop_resumes_from_its_checkpoint(mini, tmp_path):
    """The loop's checkpoint (paperloom.checkpoint) holds model, optimizer, scheduler and step; --resume continues
    from it, and the saved categories + sizes rebuild the model (checkpoint=...)."""
    import torch
    from paperloom_coconut.components import build_baseline, build_panoptic
    from paperloom_coconut.synthetic import CATS
    from paperloom_coconut.tasks import train_model

    from paperloom.context import Run

    def run(steps, resume=False):
        ctx = Run(out=tmp_path, plugin="coconut", task="train", resume=resume)
        data = build_panoptic(ctx, root=str(mini["fine"]), splits=["s"], limit=4, train=True)
        model = build_baseline(ctx, CATS, width=8)
        return model, train_model(model, data, ctx, steps=steps, batch_size=2, lr=1e-2, checkpoint_every=1)

    first, m = run(2)
    assert m["steps"] == 2.0 and m["first_loss"] > 0
    at2 = {k: v.clone() for k, v in first.state_dict().items()}
    resumed, m = run(4, resume=True)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4 and m["steps"] == 4.0
    assert all(int(s["step"]) == 4 for s in state["optimizer"]["state"].values())  # Adam moments carried on
    assert state["scheduler"]["last_epoch"] == 4
    changed = [k for k, v in resumed.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, at2[k])]
    assert len(changed) > 10
    ctx = Run(out=tmp_path, plugin="coconut", task="evaluate")
    again = build_baseline(ctx, checkpoint=str(tmp_path / "checkpoints" / "last.pt"))
    assert again.categories == resumed.categories and again.config == resumed.config
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), resumed.state_dict().values()))


def test_conforms():
    assert_conforms("coconut")


def test_split_oddities_are_counted_warned_and_strict_refuses(mini, tmp_path):
    """An annotation whose image is missing from 'images' and a prediction listed twice: panopticapi evaluates
    both (it never reads 'images'; the last prediction per image counts), so do we, with warnings."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(mini["fine"], root)
    js = root / "annotations" / "panoptic_train2017.json"
    data = json.loads(js.read_text())
    n = len(data["annotations"])
    data["images"] = data["images"][1:]
    js.write_text(json.dumps(data))
    pred = tmp_path / "pred.json"
    first = {**data["annotations"][0], "segments_info": []}  # superseded by the later entry for the same image
    pred.write_text(json.dumps({"annotations": [first, *data["annotations"]]}))
    args = [f"data.root={root}", "data.splits=[s]", f"predictions={pred}",
            f"predictions_dir={root / 'panoptic_train2017'}", "processes=1", "metrics=[pq,miou]"]
    out, m = execute("coconut:evaluate", overrides=args, out=tmp_path / "ok", device="cpu", plot=False)
    assert m["pq"] == 1.0 and m["images"] == n  # the image without an entry is evaluated; the later prediction wins
    assert m["odd_annotation_without_image"] == 1 and m["odd_pred_duplicate_image"] == 1
    log = (out / "run.log").read_text()
    assert "annotation whose image_id is not in 'images'" in log and "strict=true" in log
    with pytest.raises(UserError, match="not in 'images'.*set strict=false"):
        execute("coconut:evaluate", overrides=args + ["strict=true"], out=tmp_path / "strict", device="cpu", plot=False)
    del data["categories"][0]["isthing"]
    js.write_text(json.dumps(data))
    with pytest.raises(UserError, match="has no 'isthing'; add isthing: 1"):
        execute("coconut:evaluate", overrides=args, out=tmp_path / "noisthing", device="cpu", plot=False)


def test_a_failing_image_is_named_after_the_others_finished(mini, shifted, tmp_path):
    """Evaluation runs on the core's map executor: a broken image is reported with its id once the rest is done."""
    import shutil

    pred_json, pred_dir = (a.split("=", 1)[1] for a in shifted)
    broken = tmp_path / "png"
    shutil.copytree(pred_dir, broken)
    third = json.loads(open(pred_json).read())["annotations"][2]
    (broken / third["file_name"]).unlink()
    args = _root(mini) + [f"predictions={pred_json}", f"predictions_dir={broken}", "processes=2"]
    # the executor's items are chunks of 32 images: the error names the chunk, the image id and its file
    with pytest.raises(UserError, match=rf"1 of \d+ items failed \(item 0: UserError: image {third['image_id']}: "
                                        r"panoptic PNG .* does not exist"):
        execute("coconut:evaluate", overrides=args, out=tmp_path / "e", device="cpu", plot=False)


def _without_timing(m):
    return {k: v for k, v in m.items() if not k.startswith(("shard_", "seconds", "images_per"))}


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_evaluation_and_conversion_are_the_same_on_every_executor(mini, shifted, tmp_path, executor, request):
    """The core's map executor: 1 local worker, 2 local workers and a local Ray cluster (2 CPUs) give identical
    metrics and identical converted files. (Ray listens on every interface: it runs in a loopback-only network
    namespace.)"""
    if executor == "ray":
        pytest.importorskip("ray", reason="the Ray executor needs paperloom-core[ray]")
        from paperloom.testing import run_in_loopback_namespace

        if not run_in_loopback_namespace(request.node.nodeid, request.config.rootpath):
            return
    runs = [("local", 1), ("local", 2)] if executor == "local" else [("local", 1), ("ray", 2)]
    metrics, instances = [], []
    for backend, workers in runs:
        out = tmp_path / f"{backend}{workers}"
        _, m = execute("coconut:evaluate", overrides=_root(mini) + shifted + [f"processes={workers}"],
                       out=out / "e", device="cpu", plot=False, executor=backend, workers=workers)
        metrics.append(_without_timing(m))
        execute("coconut:convert", overrides=_root(mini) + ["to=instances", f"processes={workers}"],
                out=out / "c", device="cpu", plot=False, executor=backend, workers=workers)
        instances.append((out / "c" / "instances" / "instances.json").read_text())
    assert metrics[0] == metrics[1] and 0 < metrics[0]["pq"] < 1
    assert instances[0] == instances[1] and '"segmentation"' in instances[0]
