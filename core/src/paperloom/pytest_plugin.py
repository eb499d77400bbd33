"""pytest fixtures every plugin's tests get when paperloom is installed."""

from __future__ import annotations

import pytest


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
