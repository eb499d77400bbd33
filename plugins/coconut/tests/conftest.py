import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def mini(tmp_path_factory):
    """A small generated COCONut-format dataset (fine + coarse), shared by the tests."""
    from paperloom_coconut.synth import generate

    return generate(tmp_path_factory.mktemp("coconut") / "data", n_train=12, n_val=10, size=48, seed=3)
