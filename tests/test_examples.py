"""params.example.json documents every source and validates as shipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.registry import SOURCES

ROOT = Path(__file__).resolve().parent.parent


def _env_names(value: object) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return {name for item in value.values() for name in _env_names(item)}
    if isinstance(value, list):
        return {name for item in value for name in _env_names(item)}
    return set()


def test_example_config_is_valid_and_covers_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped example validates (secrets from the environment) and has every source."""
    path = ROOT / "params.example.json"
    raw = json.loads(path.read_text())
    for name in _env_names(raw):
        monkeypatch.setenv(name, "placeholder-secret")
    config = load_config(path)
    assert set(config.sources) == set(SOURCES)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_source_sample_matches_the_example(source: str) -> None:
    """Each source's own sample block is the one in the top-level example."""
    sample = json.loads((ROOT / "collectors" / source / "params.example.json").read_text())
    example = json.loads((ROOT / "params.example.json").read_text())
    assert example["sources"][source] == sample[source]
