"""Real servers for tests and benchmarks: InfluxDB 1.x, VictoriaMetrics, PostgreSQL.

Each server is started on free loopback ports with its own temporary directory and stopped
afterwards. `InfluxServer.stop()/start()` keep the data directory, so a test can take the
database away and bring it back. Nothing here mocks a server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "InfluxServer",
    "ServiceUnavailable",
    "VictoriaMetricsServer",
    "free_port",
    "postgres_database",
    "wait_until",
]


class ServiceUnavailable(RuntimeError):
    """A server this test needs cannot be started or reached here."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.05):
    """Poll `condition` until true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status < 500
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class _ServerProcess:
    """A server binary on free loopback ports with a private working directory."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self, binary_name: str, package: str, args: list[str], health_path: str) -> None:
        binary = shutil.which(binary_name)
        if binary is None:
            raise ServiceUnavailable(f"{binary_name} not installed (apt-get install {package})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"{binary_name}.log").open("ab")
        self.process = subprocess.Popen(
            [binary, *args], stdout=log, stderr=log, start_new_session=True
        )
        try:
            wait_until(lambda: _http_ok(f"{self.url}{health_path}"), 30, f"{binary_name} to answer")
        except AssertionError as exc:
            self.stop()
            raise ServiceUnavailable(f"{binary_name} did not start: {exc}") from exc

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@dataclass
class InfluxServer(_ServerProcess):
    """An `influxd` (1.x) process with a private config and data directory."""

    rpc_port: int = field(default_factory=free_port)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "influxdb.conf"
        config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.workdir}/meta"
[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""",
            encoding="utf-8",
        )
        self._launch("influxd", "influxdb", ["-config", str(config)], "/ping")

    def query(self, statement: str, database: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; returns the series list of the first result."""
        params = {"q": statement, "epoch": "ns"}
        if database:
            params["db"] = database
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.url}/query", data=data)
        with urllib.request.urlopen(request, timeout=30) as response:
            result = json.loads(response.read())["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return result.get("series", [])

    def rows(self, statement: str, database: str) -> list[dict[str, Any]]:
        """Rows of a query as dicts (columns → values), tags merged in for GROUP BY *."""
        out = []
        for series in self.query(statement, database):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags") or {})
                out.append(row)
        return out

    def create_database(self, name: str | None = None) -> str:
        name = name or f"cf_{uuid.uuid4().hex[:10]}"
        self.query(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')


@dataclass
class VictoriaMetricsServer(_ServerProcess):
    """A single-node VictoriaMetrics, a real server for the InfluxDB `/api/v2/write` path."""

    def start(self) -> None:
        args = [
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir}/data",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ]
        self._launch("victoria-metrics", "victoria-metrics", args, "/health")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Series matching a PromQL selector, from /api/v1/export (one JSON line each)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


POSTGRES_ADMIN_URL = os.environ.get(
    "CHARGEFLUX_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_database() -> tuple[str, Callable[[], None]]:
    """Create a throw-away database; returns its SQLAlchemy URL and a function dropping it."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise ServiceUnavailable("psycopg not installed") from exc
    name = f"cf_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {exc}") from exc
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]

    def drop() -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}", drop
