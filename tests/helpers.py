"""Test helpers: run the real daemon (pipeline, supervisor, sink) over chosen sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.config import Config, parse_config
from daemon.points import Point
from daemon.runtime import Daemon
from daemon.sinks import EmbeddedStore

__all__ = ["make_config", "run_once", "stored_points"]


def make_config(
    state_dir: Path,
    sources: dict[str, Any] | None = None,
    sink: dict[str, Any] | None = None,
    **extra: Any,
) -> Config:
    raw: dict[str, Any] = {
        "state_dir": str(state_dir),
        "sink": sink or {"type": "embedded"},
        "outbox": {"flush_interval_s": 0.05, "drain_timeout_s": 30, **extra.pop("outbox", {})},
        "sources": sources or {},
        **extra,
    }
    return parse_config(raw, "<test>")


async def run_once(
    state_dir: Path,
    sources: dict[str, Any],
    sink: dict[str, Any] | None = None,
    stream_for: float = 0.0,
    **extra: Any,
) -> int:
    """`chargeflux run --once` in-process; returns the exit code."""
    config = make_config(state_dir, sources, sink, **extra)
    return await Daemon(config).run_once(stream_for=stream_for)


async def stored_points(state_dir: Path, measurement: str) -> list[Point]:
    """Points of `measurement` in the embedded store of `state_dir`."""
    store = EmbeddedStore(state_dir / "points.db")
    try:
        return await store.query(measurement)
    finally:
        await store.close()
