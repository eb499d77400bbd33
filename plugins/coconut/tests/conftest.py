import pytest


@pytest.fixture(scope="session")
def mini(tmp_path_factory):
    """A small generated COCONut-format dataset (fine + coarse), shared by the tests."""
    from paperloom_coconut.synthetic import generate

    return generate(tmp_path_factory.mktemp("coconut") / "data", n_train=12, n_val=10, size=48, seed=3)


@pytest.fixture
def ctx(tmp_path):
    """A run context, as builders and task functions get it."""
    from paperloom.context import Run

    return Run(out=tmp_path, plugin="coconut", task="test")
