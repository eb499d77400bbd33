"""Tasks end to end on CPU: animate (local guidance and SDS with a tiny random model), outputs, resume after a
kill, render, bad inputs, the demo's smoke run and conformance."""

import json

import pytest

from paperloom import UserError
from paperloom.runner import execute
from paperloom.testing import assert_conforms

TINY = ["size=32", "frames=3", "steps=4", "control_points=24", "model_args={inter_dim: 8, embed_dim: 4}",
        "checkpoint_every=2", "log_every=1"]


def run(tmp_path, name, *extra, task="animate", **kw):
    return execute(f"dynamic-typography:{task}", overrides=[*TINY, *extra] if task == "animate" else list(extra),
                   out=tmp_path / name, device="cpu", plot=False, **kw)


def test_animate_writes_every_output_and_discloses_the_local_guidance(tmp_path):
    out, m = run(tmp_path, "a", "word=HI", "letter=I", "prompt=the I jumps")
    assert m["guidance_is_local"] == 1.0 and 0 <= m["iou"] <= 1 and m["motion"] >= 0
    for f in ("animation.gif", "animation.mp4", "contact_sheet.png", "svg/base.svg", "points.json"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert len(list((out / "svg").glob("word_*.svg"))) == 3 and len(list((out / "png").glob("frame_*.png"))) == 3
    assert "LOCAL procedural motion target" in (out / "svg" / "word_000.svg").read_text()
    assert "LOCAL" in json.loads((out / "points.json").read_text())["disclosure"]
    import imageio.v3 as iio

    assert iio.imread(out / "animation.gif").shape[0] == 3


def test_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    from paperloom_dynamic_typography import guidance as gmod

    _, fresh = run(tmp_path, "fresh", "steps=6")
    original = gmod.MotionTargetGuidance.__call__

    def dies_at_step_3(self, frames, base, step=0):
        if step == 3:
            raise RuntimeError("killed")
        return original(self, frames, base, step)

    monkeypatch.setattr(gmod.MotionTargetGuidance, "__call__", dies_at_step_3)
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path, "killed", "steps=6")
    monkeypatch.setattr(gmod.MotionTargetGuidance, "__call__", original)
    out, resumed = run(tmp_path, "killed", "steps=6", resume=True)
    assert "resumed" in (out / "run.log").read_text().lower() or (out / "checkpoints").is_dir()
    for k in ("iou", "motion", "conformal", "transition"):
        assert resumed[k] == pytest.approx(fresh[k], rel=1e-4, abs=1e-7), k


def test_animate_with_sds_from_a_tiny_random_text_to_video_folder(tmp_path, t2v):
    out, m = run(tmp_path, "sds", "steps=2", "guidance=dynamic-typography:sds",
                 f"guidance_args={{path: {t2v}, guidance_scale: 30}}", "word=AB", "letter=0")
    assert m["guidance_is_local"] == 0.0
    assert "SDS from a text-to-video" in (out / "svg" / "word_000.svg").read_text()


def test_render_svg_frames_to_video(tmp_path):
    src, _ = run(tmp_path, "a", "word=OK", "letter=1")
    out, m = run(tmp_path, "r", f"frames={src / 'svg'}", "height=64", task="render")
    assert m["frames"] == 3 and m["height"] == 64
    assert (out / "animation.mp4").is_file() and (out / "contact_sheet.png").is_file()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "word_000.svg").write_text("<svg><path d=")
    with pytest.raises(UserError, match="word_000.svg is not a valid SVG"):
        run(tmp_path, "r2", f"frames={bad}", task="render")
    with pytest.raises(UserError, match="is not a folder"):
        run(tmp_path, "r3", f"frames={tmp_path / 'nowhere'}", task="render")
    with pytest.raises(UserError, match="frames is empty"):
        run(tmp_path, "r5", task="render")
    with pytest.raises(UserError, match="no files match"):
        run(tmp_path, "r4", f"frames={src}", task="render")


@pytest.mark.parametrize("overrides,match", [
    (["letter=9"], "outside the word"),
    (["letter=Z", "word=CAMEL"], "neither an index nor a character"),
    (["font=/nonexistent/font.ttf"], "does not exist"),
    (["model_args={bogus: 1}"], "not a fields option"),
    (["guidance=dynamic-typography:sds"], "needs guidance_args.path"),
    (["guidance_args={motion: teleport}"], "expected one of"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, overrides, match):
    with pytest.raises(UserError, match=match):
        run(tmp_path, "bad", *overrides)
    assert not (tmp_path / "bad").exists()  # the half-made run folder is removed


def test_demo_words_must_parse(tmp_path):
    with pytest.raises(UserError, match="WORD:LETTER_INDEX:prompt"):
        execute("dynamic-typography:demo", overrides=["words=[CAMEL]"], out=tmp_path / "d", device="cpu",
                smoke=True, plot=False)


def test_conforms():
    assert_conforms("dynamic-typography")
