"""The conformance kit, and the demo's statistics, its report and its resume."""

import pytest

from paperloom.runner import execute
from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("clip")  # layout, light imports, configs validate, the demo (smoke) trains every parameter


def test_demo_metrics_and_resume(tmp_path):
    out = tmp_path / "demo"
    _, m = execute("clip:demo", out=out, device="cpu", plot=False, smoke=True,
                   overrides=["parts=[quality, architectures]"])
    diffs = [m[f"clean_zero_shot_s{s}"] - m[f"noisy_zero_shot_s{s}"] for s in (0, 1)]
    assert m["clean_minus_noisy_mean"] == pytest.approx(sum(diffs) / 2)
    assert m["clean_minus_noisy_lower"] == pytest.approx(m["clean_minus_noisy_mean"] - 3 * m["clean_minus_noisy_se"])
    assert {"vit_small_zero_shot", "resnet_clean_zero_shot"} <= set(m) and (out / "demo.png").is_file()
    assert (out / "data" / "test" / "red_circle").is_dir()  # the zero-shot set is an ImageFolder on disk
    (out / "stages" / "noisy-s1" / "result.json").unlink()  # as if killed during that training
    _, again = execute("clip:demo", out=out, device="cpu", plot=False, resume=True)
    log = (out / "run.log").read_text()
    assert "clean-s0: already finished, skipped" in log and "resnet-small: already finished, skipped" in log
    assert again["clean_zero_shot_s0"] == m["clean_zero_shot_s0"]
