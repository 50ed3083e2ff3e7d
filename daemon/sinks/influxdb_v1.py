"""InfluxDB 1.x HTTP API sink: `POST /write` and InfluxQL `/query`.

The 1.x API is also served by InfluxDB 2.x and 3.x (compatibility endpoints), so this is the
most widely usable sink. Status mapping: 204 → acknowledged; 400 / 413 → `SinkRejected` with
the server's reason (InfluxDB 1.x writes the valid points of a batch and names the first bad
one; the flusher bisects); 401/403 → `SinkAuthError`; 429/503/5xx, timeouts and refused
connections → `SinkRetryable` (with Retry-After when sent).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import ssl
from typing import Any

import aiohttp
import structlog

from daemon.config import InfluxV1SinkConfig
from daemon.errors import SinkAuthError, SinkRejected, SinkRetryable
from daemon.http import parse_retry_after
from daemon.metrics import Counters
from daemon.points import Point

__all__ = ["InfluxV1Sink", "ssl_context"]


def ssl_context(verify: bool, ca_file: Any = None) -> ssl.SSLContext | bool:
    """TLS settings for aiohttp: verification on unless explicitly disabled."""
    if not verify:
        return False
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class InfluxV1Sink:
    """Writes line protocol to an InfluxDB 1.x-compatible `/write` endpoint."""

    name = "influxdb"

    def __init__(self, config: InfluxV1SinkConfig, counters: Counters) -> None:
        self._config = config
        self._counters = counters
        self._http: aiohttp.ClientSession | None = None
        self._params = {"db": config.database, "precision": config.precision}
        if config.retention_policy:
            self._params["rp"] = config.retention_policy
        self._headers: dict[str, str] = {}
        if config.username and config.password:
            pair = f"{config.username}:{config.password.get_secret_value()}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self._database_missing = config.create_database

    async def open(self) -> None:
        if self._http is None:
            connector = aiohttp.TCPConnector(
                ssl=ssl_context(self._config.verify_tls, self._config.ca_file), limit=4
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._config.timeout_s),
            )
        if self._database_missing:
            try:
                await self._create_database()
            except SinkRetryable as exc:  # the server is down: create it before the first write
                structlog.get_logger("chargeflux.sink").warning(
                    "influxdb_unreachable_at_start", error=str(exc)
                )

    async def _create_database(self) -> None:
        """CREATE DATABASE is idempotent in InfluxDB 1.x; run once, before the first write."""
        await self.influxql(f'CREATE DATABASE "{_quote(self._config.database)}"', post=True)
        self._database_missing = False

    async def write(self, body: bytes, lines: int) -> None:
        assert self._http is not None, "open() first"
        if self._database_missing:
            await self._create_database()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._config.gzip:
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers["Content-Encoding"] = "gzip"
        self._counters.inc("requests")
        try:
            async with self._http.post(
                f"{self._config.url}/write", params=self._params, data=body, headers=headers
            ) as response:
                if response.status == 204:
                    return
                text = (await response.text())[:1000]
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._counters.inc("errors")
            raise SinkRetryable(f"InfluxDB unreachable: {type(exc).__name__}: {exc}") from exc
        self._counters.inc("errors")
        reason = _reason(text)
        if status in (400, 413):
            raise SinkRejected(f"HTTP {status}: {reason}")
        if status in (401, 403):
            raise SinkAuthError(f"InfluxDB refused the credentials (HTTP {status}): {reason}")
        raise SinkRetryable(f"HTTP {status}: {reason}", parse_retry_after(retry_after))

    async def influxql(
        self, query: str, *, post: bool = False, bind: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run one InfluxQL statement (`bind`: values of its $parameters); the `series`
        list of its first result."""
        assert self._http is not None, "open() first"
        params = {"db": self._config.database, "q": query, "epoch": "ns"}
        if bind:
            params["params"] = json.dumps(bind)
        method = self._http.post if post else self._http.get
        try:
            async with method(f"{self._config.url}/query", params=params) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SinkRetryable(f"InfluxDB unreachable: {type(exc).__name__}: {exc}") from exc
        if status in (401, 403):
            raise SinkAuthError(f"InfluxDB refused the credentials (HTTP {status})")
        if status >= 400:
            raise SinkRejected(f"query failed: HTTP {status}: {_reason(text)}")
        result = json.loads(text)["results"][0]
        if "error" in result:
            raise SinkRejected(f"query failed: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    async def query(
        self, measurement: str, since_ns: int | None = None, limit: int | None = None
    ) -> list[Point]:
        await self.open()
        bind: dict[str, Any] = {"since": since_ns if since_ns is not None else 0}
        tail = f" ORDER BY time DESC LIMIT {int(limit)}" if limit else ""
        # identifiers cannot be bound: the measurement is quoted and escaped instead
        statement = f'SELECT * FROM "{_quote(measurement)}" WHERE time >= $since GROUP BY *{tail}'  # noqa: S608
        points = []
        for series in await self.influxql(statement, bind=bind):
            tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
            columns = series["columns"]
            for row in series["values"]:
                fields = {
                    column: value
                    for column, value in zip(columns[1:], row[1:], strict=True)
                    if value is not None
                }
                points.append(Point(measurement, tags, fields, int(row[0])))
        points.sort(key=lambda point: point.time_ns)
        return points[-limit:] if limit else points

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def _quote(identifier: str) -> str:
    return identifier.replace("\\", "\\\\").replace('"', '\\"')


def _reason(text: str) -> str:
    try:
        return str(json.loads(text).get("error", text))[:500]
    except (ValueError, AttributeError):
        return text[:500] or "no body"
