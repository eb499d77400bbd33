"""One thread per test process; a run context; the tiny random text-to-video folder (built once)."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # the Triton kernel runs in the interpreter on CPU tensors

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def ctx(tmp_path):
    """A run context, as builders and task functions get it."""
    from paperloom.context import Run

    return Run(out=tmp_path, plugin="dynamic-typography", task="test")


@pytest.fixture(scope="session")
def t2v(tmp_path_factory):
    """A tiny randomly initialized ModelScope-layout diffusers folder (unet/, vae/, text_encoder/, ...)."""
    pytest.importorskip("diffusers")
    from paperloom_dynamic_typography.synthetic import tiny_text_to_video

    return tiny_text_to_video(tmp_path_factory.mktemp("t2v") / "model")
