"""pytest fixtures and markers every plugin's tests get when paperloom-core is installed.

Markers: ``slow`` (run with ``--slow``), ``gpu`` (run where CUDA is present, skipped elsewhere) and
``cross_plugin`` (tests that compose several plugins; ``nox -s together`` selects them with
``-m cross_plugin``, and they skip themselves with ``pytest.importorskip`` when a plugin is absent).
"""

from __future__ import annotations

import pytest

MARKERS = {
    "slow": "long-running check, off by default (run with --slow)",
    "gpu": "needs a CUDA GPU; skipped where none is visible",
    "cross_plugin": "composes components of several plugins (skips when one is not installed)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = config.getoption("--slow")
    gpu = None
    for item in items:
        if "slow" in item.keywords and not slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --slow"))
        if "gpu" in item.keywords:
            gpu = _cuda() if gpu is None else gpu
            if not gpu:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


@pytest.fixture
def fresh_registry():
    """Rediscover installed plugins for this test, and forget them afterwards."""
    from .plugins import discover, set_registry

    reg = discover()
    set_registry(reg)
    yield reg
    set_registry(None)


@pytest.fixture
def core_only(monkeypatch):
    """A registry with only the built-in plugin: installed plugins are ignored."""
    from .plugins import DISABLE_ENV, discover, set_registry

    monkeypatch.setenv(DISABLE_ENV, "1")
    reg = discover()
    set_registry(reg)
    yield reg
    set_registry(None)
