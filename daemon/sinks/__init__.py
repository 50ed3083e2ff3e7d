"""Sinks: InfluxDB 1.x HTTP API, InfluxDB 2.x API, and the embedded SQLite store."""

from __future__ import annotations

from pathlib import Path

from daemon.config import (
    EmbeddedSinkConfig,
    InfluxV1SinkConfig,
    InfluxV2SinkConfig,
)
from daemon.metrics import Counters
from daemon.sinks.base import Sink
from daemon.sinks.embedded import EmbeddedStore

__all__ = ["EmbeddedStore", "Sink", "build_sink"]


def build_sink(
    config: EmbeddedSinkConfig | InfluxV1SinkConfig | InfluxV2SinkConfig,
    state_dir: Path,
    counters: Counters,
) -> Sink:
    """The sink a config block describes (not yet opened)."""
    if isinstance(config, InfluxV1SinkConfig):
        from daemon.sinks.influxdb_v1 import InfluxV1Sink

        return InfluxV1Sink(config, counters)
    if isinstance(config, InfluxV2SinkConfig):
        from daemon.sinks.influxdb_v2 import InfluxV2Sink

        return InfluxV2Sink(config, counters)
    return EmbeddedStore(config.path or state_dir / "points.db")
