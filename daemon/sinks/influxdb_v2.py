"""InfluxDB 2.x API sink (`/api/v2/write`, token/org/bucket) through influxdb-client.

Uses the library's asyncio client (`InfluxDBClientAsync`); batching and retries stay in the
outbox, so each `write()` is one request. Status mapping as for the 1.x sink: 400/413 →
rejected (bisected by the flusher), 401/403 → auth error, 429/5xx/network → retryable.
"""

from __future__ import annotations

from typing import Any

from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException

from daemon.config import InfluxV2SinkConfig
from daemon.errors import SinkAuthError, SinkRejected, SinkRetryable
from daemon.http import parse_retry_after
from daemon.metrics import Counters
from daemon.points import Point

__all__ = ["InfluxV2Sink"]


class InfluxV2Sink:
    """Writes line protocol through influxdb-client's async write API."""

    name = "influxdb_v2"

    def __init__(self, config: InfluxV2SinkConfig, counters: Counters) -> None:
        self._config = config
        self._counters = counters
        self._client: InfluxDBClientAsync | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self._config.url,
                token=self._config.token.get_secret_value(),
                org=self._config.org,
                timeout=int(self._config.timeout_s * 1000),
                verify_ssl=self._config.verify_tls,
                ssl_ca_cert=str(self._config.ca_file) if self._config.ca_file else None,
                enable_gzip=self._config.gzip,
            )

    async def write(self, body: bytes, lines: int) -> None:
        assert self._client is not None, "open() first"
        self._counters.inc("requests")
        try:
            await self._client.write_api().write(
                bucket=self._config.bucket, org=self._config.org, record=body
            )
        except ApiException as exc:
            self._counters.inc("errors")
            raise _mapped(exc) from None
        except (TimeoutError, OSError, Exception) as exc:  # aiohttp errors, refused connections
            self._counters.inc("errors")
            raise SinkRetryable(f"InfluxDB unreachable: {type(exc).__name__}: {exc}") from exc

    async def query(
        self, measurement: str, since_ns: int | None = None, limit: int | None = None
    ) -> list[Point]:
        raise NotImplementedError("query the 2.x bucket with Flux or the 1.x /query endpoint")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _mapped(exc: ApiException) -> Exception:
    status = exc.status or 0
    reason = _body_message(exc.body) or exc.reason or "no body"
    if status in (400, 413, 422):
        return SinkRejected(f"HTTP {status}: {reason}")
    if status in (401, 403):
        return SinkAuthError(f"InfluxDB refused the token (HTTP {status}): {reason}")
    headers: Any = exc.headers or {}
    return SinkRetryable(f"HTTP {status}: {reason}", parse_retry_after(headers.get("Retry-After")))


def _body_message(body: Any) -> str:
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return text[:500]
