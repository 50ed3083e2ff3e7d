"""Engine-test fixtures: the counter source registered as a plugin."""

from __future__ import annotations

import pytest

from daemon import registry


@pytest.fixture(autouse=True)
def counter_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SOURCES, "counter", "tests.engine.counter_source")
