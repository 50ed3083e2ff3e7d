"""Shared fixtures: real InfluxDB, VictoriaMetrics and PostgreSQL servers.

A test that needs a server it cannot get is skipped, unless CHARGEFLUX_REQUIRE_SERVICES=1
(as in CI), where it fails instead: CI must never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    InfluxServer,
    ServiceUnavailable,
    VictoriaMetricsServer,
    postgres_database,
)

REQUIRE_SERVICES = os.environ.get("CHARGEFLUX_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Fail (CI) or skip (a laptop without the server) a test needing a missing server."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def _serve(server: InfluxServer | VictoriaMetricsServer) -> Iterator[Any]:
    try:
        server.start()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd for the whole run (databases are per test)."""
    yield from _serve(InfluxServer(tmp_path_factory.mktemp("influxd")))


@dataclass
class InfluxDatabase:
    """A fresh database on the shared influxd."""

    server: InfluxServer
    database: str

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, statement: str) -> list[dict[str, Any]]:
        return self.server.rows(statement, self.database)

    def sink_config(self, **extra: Any) -> dict[str, Any]:
        return {"type": "influxdb", "url": self.url, "database": self.database, **extra}


@pytest.fixture
def influxdb(influx_server: InfluxServer) -> Iterator[InfluxDatabase]:
    """A real InfluxDB 1.x database, dropped after the test."""
    name = influx_server.create_database()
    yield InfluxDatabase(influx_server, name)
    influx_server.drop_database(name)


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    """A real VictoriaMetrics serving the InfluxDB v2 write API."""
    yield from _serve(VictoriaMetricsServer(tmp_path_factory.mktemp("vm")))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database (SQLAlchemy URL), dropped after the test."""
    try:
        url, drop = postgres_database()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    yield url
    drop()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path
