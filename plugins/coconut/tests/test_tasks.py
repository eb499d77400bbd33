"""Tasks end to end on generated data: evaluate (folders, models, shards), merge, convert, visualize,
train + resume, conformance, and composition with another plugin's model."""

import json
import sys
import types

import numpy as np
import pytest
from paperloom_coconut.panoptic import read_ids, write_ids

from paperloom.errors import UserError
from paperloom.run import execute
from paperloom.testing import assert_conforms, registry_with


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
    args = _root(mini) + ["steps=2", "batch_size=2", "width=8", "checkpoint_every=1", "threads=1",
                          "data.limit=4"]
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


def test_train_resume_continues_from_checkpoint(mini, tmp_path):
    import torch
    from paperloom_coconut.data import build_dataset
    from paperloom_coconut.model import build_baseline
    from paperloom_coconut.synth import CATS
    from paperloom_coconut.train import train_model

    class Ctx:
        checkpoint_dir, seed, device, resume = tmp_path / "ck", 0, "cpu", False
        log = __import__("logging").getLogger("t")

        def log_metrics(self, *a, **k):
            pass

    data = build_dataset(root=str(mini["fine"]), splits=["s"], limit=4)
    ctx = Ctx()
    model = build_baseline(CATS, width=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_model(model, data, ctx, steps=2, batch_size=2, lr=1e-2, checkpoint_every=1)
    ctx.resume = True
    again = build_baseline(CATS, width=8)
    out = train_model(again, data, ctx, steps=4, batch_size=2, lr=1e-2, checkpoint_every=1)
    state = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)
    assert state["step"] == 4 and out["steps"] == 4.0 and out["first_loss"] > 0
    changed = [k for k, v in again.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert len(changed) > 10


def test_conforms():
    assert_conforms("coconut")


def test_composes_with_another_plugins_model(mini, tmp_path):
    """coconut:evaluate scores any plugin's model that produces 'panoptic-segmentation'."""
    from paperloom import Component, PluginInfo, hookimpl

    fake = types.ModuleType("fakeseg_plugin")

    class Flat:
        """Predicts one 'grass' segment covering the whole image."""

        def predict_panoptic(self, images):
            h, w = images.shape[-2:]
            return [(np.ones((h, w), np.uint32), [{"id": 1, "category_id": 193, "iscrowd": 0}])]

    fake.build = lambda **kw: Flat()
    fake.paperloom_plugin = hookimpl(lambda: PluginInfo(summary="a flat segmenter"))
    fake.paperloom_components = hookimpl(lambda: [Component("flat", "model", "fakeseg_plugin:build",
                                                            produces=("panoptic-segmentation",))])
    sys.modules["fakeseg_plugin"] = fake
    reg = registry_with(("coconut", "paperloom_coconut.plugin"), ("fakeseg", fake))
    _, m = execute("coconut:evaluate", overrides=_root(mini) + ["model=fakeseg:flat", "metrics=[pq, miou]"],
                   out=tmp_path / "x", device="cpu", plot=False, reg=reg)
    assert 0.0 < m["miou"] < 1.0 and m["images"] == 12.0
    with pytest.raises(UserError, match="panoptic-segmentation"):
        execute("coconut:evaluate", overrides=_root(mini) + ["model=core:gpt2"], out=tmp_path / "y", device="cpu",
                plot=False, reg=reg)


def test_components_build_by_name(mini):
    """coconut:panoptic and coconut:pq as any task would build them (ctx.build / build_component)."""
    from paperloom.run import build_component

    reg = registry_with(("coconut", "paperloom_coconut.plugin"))
    data = build_component(reg, "coconut:panoptic", root=str(mini["fine"]), splits=["relabeled-val"])
    evaluate = build_component(reg, "coconut:pq", metrics=["pq", "miou"])
    gt = (mini["fine"] / "annotations" / "panoptic_val2017.json", mini["fine"] / "panoptic_val2017")
    m = evaluate(gt, data)
    assert m["pq"] == 1.0 and m["miou"] == 1.0 and "ap" not in m
