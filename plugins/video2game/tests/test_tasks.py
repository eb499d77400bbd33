"""The four tasks end to end on generated data through the core runner (typed run-folder inputs), resume of a
killed fit, bad inputs, and conformance."""

import json

import numpy as np
import pytest

from paperloom import UserError
from paperloom.runner import execute
from paperloom.testing import assert_conforms

TINY_FIT = ["trainer.max_steps=4", "trainer.checkpoint_every=2", "trainer.val_every=4", "rays=128", "field.levels=4",
            "field.log2_table=10", "field.max_res=64", "field.grid_res=16", "field.hidden=16", "grid.warmup=2",
            "grid.every=2", "turntable=2", "holdout_every=4"]


def run(task, overrides, out, **kw):
    return execute(f"video2game:{task}", overrides=overrides, out=out, device="cpu", plot=False, **kw)


@pytest.fixture(scope="module")
def chain(capture, tmp_path_factory):
    """prepare (known poses, 32 px) -> fit -> mesh -> bake, each from the previous run folder."""
    root = tmp_path_factory.mktemp("chain")
    prep, m0 = run("prepare", [f"input={capture['known']}", "size=32"], root / "prepare")
    fit, m1 = run("fit", [f"data={prep}"] + TINY_FIT, root / "fit")
    mesh, m2 = run("mesh", [f"nerf={fit}", "resolution=24", "level=0", "faces=400"], root / "mesh")
    bake, m3 = run("bake", [f"mesh={mesh}", "texture=16", "steps=3", "pixels=256"], root / "bake")
    return {"prepare": (prep, m0), "fit": (fit, m1), "mesh": (mesh, m2), "bake": (bake, m3)}


def test_chain_writes_every_artifact(chain):
    prep, m0 = chain["prepare"]
    assert m0["frames"] == 24.0
    meta = json.loads((prep / "dataset" / "transforms.json").read_text())
    centres = np.array([f["transform_matrix"] for f in meta["frames"]])[:, :3, 3]
    assert np.isclose(np.linalg.norm(centres, axis=1).mean(), 2.5)  # normalised into the scene box
    fit, m1 = chain["fit"]
    assert m1["steps"] == 4.0 and 0 < m1["nerf_psnr"] < 60 and (fit / "nerf" / "model.safetensors").is_file()
    assert (fit / "validation.png").is_file() and (fit / "turntable.mp4").is_file()
    mesh, m2 = chain["mesh"]
    assert 0 < m2["triangles"] <= 400 and (mesh / "mesh" / "scene.ply").is_file()
    bake, m3 = chain["bake"]
    for f in ("diffuse.png", "specular.png", "mlp.json", "scene.obj", "scene.mtl"):
        assert (bake / "baked" / f).is_file(), f
    assert "baked_psnr" in m3 and "nerf_psnr_masked" in m3 and (bake / "side_by_side.png").is_file()
    run_json = json.loads((bake / "run.json").read_text())
    assert run_json["artifacts"]["baked"]["contract"] == "baked-mesh"


def test_run_folders_are_typed_inputs(chain, tmp_path):
    prep, _ = chain["prepare"]
    with pytest.raises(UserError, match="'scene-mesh' is needed"):
        run("bake", [f"mesh={prep}"], tmp_path / "b")
    with pytest.raises(UserError, match="no run folder"):
        run("fit", [f"data={tmp_path}"], tmp_path / "f")


def test_killed_fit_resumes(chain, tmp_path):
    prep, _ = chain["prepare"]
    out, m = run("fit", [f"data={prep}"] + TINY_FIT, tmp_path / "fit")
    ckpt = out / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    out, m = run("fit", ["trainer.max_steps=6"], tmp_path / "fit", resume=True)
    assert m["steps"] == 6.0 and "resuming from" in (out / "run.log").read_text()


def test_prepare_from_video_with_sfm(capture, tmp_path):
    out, m = run("prepare", [f"input={capture['video']}", f"known_poses={capture['known']}", "size=32"], tmp_path / "p")
    assert m["sfm_registered"] == 24.0 and m["fallback_known_poses"] == 0.0
    assert m["sfm_rot_err_deg"] < 1.5


def test_prepare_subsamples_known_poses_with_the_video(capture, tmp_path):
    out, m = run("prepare", [f"input={capture['video']}", f"known_poses={capture['known']}", "fps=5", "size=32",
                             "min_registered=0"], tmp_path / "p")
    assert m["frames"] == m["sfm_frames"] == 12.0  # every 2nd frame of the 10 fps video, and 12 known poses for them


def test_prepare_falls_back_to_known_poses_and_says_so(tmp_path):
    """Noise frames: SfM registers nothing, so the known poses are used (and the report says so)."""
    from paperloom_video2game.data import Frames, read_transforms, write_transforms
    from paperloom_video2game.synthetic import orbit, write_video

    g = np.random.default_rng(0)
    imgs = g.integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "v.mp4", imgs, fps=5)
    write_transforms(tmp_path / "known", Frames(imgs, orbit(5), np.tile([60.0, 60, 32, 32], (5, 1)),
                                                [f"f{i}.png" for i in range(5)]))
    out, m = run("prepare", [f"input={tmp_path / 'v.mp4'}", f"known_poses={tmp_path / 'known'}"], tmp_path / "p")
    assert m["fallback_known_poses"] == 1.0 and m["sfm_registered"] < 4
    got = read_transforms(out / "dataset")
    assert "using the known poses" in (out / "run.log").read_text()
    from paperloom_video2game.data import apply_similarity, normalization

    known = read_transforms(tmp_path / "known").c2w
    assert np.allclose(got.c2w, apply_similarity(normalization(known, 2.5), known), atol=1e-6)  # the known poses
    with pytest.raises(UserError, match="registered"):
        run("prepare", [f"input={tmp_path / 'v.mp4'}"], tmp_path / "q")


def test_prepare_errors(capture, tmp_path):
    with pytest.raises(UserError, match="input is empty"):
        run("prepare", [], tmp_path / "a")
    with pytest.raises(UserError, match="no such file or folder"):
        run("prepare", [f"input={tmp_path / 'nothing'}"], tmp_path / "b")
    from paperloom_video2game.data import read_transforms, write_transforms

    k = read_transforms(capture["known"])
    k.images, k.c2w, k.intrinsics, k.names = k.images[:3], k.c2w[:3], k.intrinsics[:3], k.names[:3]
    write_transforms(tmp_path / "three", k)
    with pytest.raises(UserError, match="has 3 frames but the input gave 24"):
        run("prepare", [f"input={capture['video']}", f"known_poses={tmp_path / 'three'}"], tmp_path / "c")
    with pytest.raises(UserError, match="bounds"):
        run("mesh", ["bounds=[0, 0, 0, 3, 1, 1]"], tmp_path / "d")


def test_conforms():
    assert_conforms("video2game")


def test_ngp_component_loads_a_fit_run_and_warm_starts_fit(chain, tmp_path):
    """The field component by name with path=FIT_RUN is the trained field (weights and occupancy grid); fit accepts
    it through model_args, so a run can continue from another run's field."""
    import torch
    from paperloom_video2game.components import build_ngp
    from safetensors.torch import load_file

    fit, _ = chain["fit"]
    field = build_ngp(None, path=str(fit))
    saved = load_file(str(fit / "nerf" / "model.safetensors"))
    assert all(torch.equal(v, saved[k].to(v.dtype)) for k, v in field.state_dict().items())
    prep, _ = chain["prepare"]
    out, m = run("fit", [f"data={prep}", f"model_args={{path: {fit}}}"] + TINY_FIT[:1] + TINY_FIT[3:],
                 tmp_path / "warm")
    assert m["steps"] == 4.0
