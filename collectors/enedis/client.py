"""The Enedis HTTP client: authentication, the three access modes, errors, retries, quota.

Every request goes through `EnedisClient._get`: it takes a slot from the account quota,
sends the request through `daemon.http.request_json`, and maps the answer:

    401                       → token dropped, one new login, request sent again
    429                       → the whole account waits until `nextAccessTime` (or
                                Retry-After), then the request is sent again
    5xx, timeout, refused     → retried with jittered exponential backoff
    403 900908                → `NotSubscribed`: the application lacks this API
    ADAM-DC-0008 / DC-0007    → `StreamRefused` (whole PRM: no consent / not the holder)
    ADAM-ERR0069 / ERR0075    → `StreamRefused` (this stream: wrong direction / no curve)
    ADAM-ERR0123              → `BeforeActivation`
    404 no_data_found         → `NoData`
    bad JSON, wrong types     → `DataError`
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
from structlog.typing import FilteringBoundLogger

from collectors.enedis.auth import TokenSource
from collectors.enedis.config import EnedisConfig
from collectors.enedis.models import (
    ConsoErrorBody,
    ContractsResponse,
    Direction,
    EnedisErrorBody,
    GatewayErrorBody,
    Kind,
    MeterSeries,
    V2Response,
    V5Reading,
    V5Wrapped,
)
from collectors.enedis.parsing import parse_v2, parse_v5
from collectors.enedis.quota import Clock, Quota
from daemon.errors import AuthError, QuotaError, SourceError, UpstreamError
from daemon.http import request_json
from daemon.metrics import Counters

__all__ = [
    "WINDOW_DAYS",
    "BeforeActivation",
    "EnedisApiError",
    "EnedisClient",
    "NoData",
    "NotSubscribed",
    "StreamRefused",
    "TokenRejected",
]

V2_NAMES: dict[tuple[Kind, Direction], str] = {
    ("load_curve", "consumption"): "courbe_de_charge_consommation",
    ("load_curve", "production"): "courbe_de_charge_production",
    ("daily", "consumption"): "consommation_quotidienne",
    ("daily", "production"): "production_quotidienne",
    ("max_power", "consumption"): "puissance_conso_max_quotidienne",
}
V5_NAMES: dict[tuple[Kind, Direction], tuple[str, str]] = {
    ("load_curve", "consumption"): ("metering_data_clc", "consumption_load_curve"),
    ("load_curve", "production"): ("metering_data_plc", "production_load_curve"),
    ("daily", "consumption"): ("metering_data_dc", "daily_consumption"),
    ("daily", "production"): ("metering_data_dp", "daily_production"),
    ("max_power", "consumption"): ("metering_data_dcmp", "daily_consumption_max_power"),
}
CONSO_V5_NAMES: dict[tuple[Kind, Direction], str] = {
    ("load_curve", "consumption"): "consumption_load_curve",
    ("load_curve", "production"): "production_load_curve",
    ("daily", "consumption"): "daily_consumption",
    ("daily", "production"): "daily_production",
    ("max_power", "consumption"): "consumption_max_power",
}
WINDOW_DAYS: dict[Kind, int] = {"load_curve": 7, "daily": 365, "max_power": 365}
PRM_WIDE = frozenset({"ADAM-DC-0008", "ADAM-DC-0007"})
STREAM_REFUSALS = frozenset({"ADAM-ERR0069", "ADAM-ERR0075"}) | PRM_WIDE


class EnedisApiError(SourceError):
    """Enedis refused a request with a named error (`code`)."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class StreamRefused(EnedisApiError):
    """No consent, not the holder, wrong direction or no load curve: stop asking."""

    @property
    def prm_wide(self) -> bool:
        return self.code in PRM_WIDE


class BeforeActivation(EnedisApiError):
    """ADAM-ERR0123: the period starts before the meter's last activation."""


class NoData(EnedisApiError):
    """404 no_data_found: nothing measured in the period."""


class NotSubscribed(AuthError):
    """403 900908: the application is not subscribed to this API."""


class TokenRejected(AuthError):
    """401: the access token is invalid or expired."""


def _error_code(body: Any) -> tuple[str, str]:
    """(code, description) from any of the three error shapes."""
    if isinstance(body, dict):
        if isinstance(body.get("fault"), dict):
            body = body["fault"]
        if "error" in body and "status" in body:
            wrapped = ConsoErrorBody.model_validate(body)
            inner = wrapped.error
            if isinstance(inner, dict):
                return str(inner.get("error") or inner.get("code") or ""), str(
                    inner.get("error_description") or wrapped.message
                )
            return str(inner or ""), wrapped.message
        if "error" in body:
            enedis = EnedisErrorBody.model_validate(body)
            return enedis.error, enedis.error_description
        if "code" in body:
            gateway = GatewayErrorBody.model_validate(body)
            return str(gateway.code), gateway.description or gateway.message
    return "", str(body or "")[:200]


def parse_next_access(text: str) -> float | None:
    """Epoch seconds of a gateway `nextAccessTime` ("2026-Oct-15 09:00:01+0000 UTC" or ISO)."""
    cleaned = text.strip().removesuffix("UTC").strip()
    for fmt in ("%Y-%b-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"):
        try:
            return datetime.strptime(cleaned, fmt).timestamp()
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class EnedisClient:
    """Typed access to one Enedis account, in the configured mode."""

    def __init__(
        self,
        config: EnedisConfig,
        http: aiohttp.ClientSession,
        tokens: TokenSource,
        quota: Quota,
        clock: Clock,
        counters: Counters,
        log: FilteringBoundLogger,
    ) -> None:
        self._config = config
        self._http = http
        self._tokens = tokens
        self._quota = quota
        self._clock = clock
        self._counters = counters
        self._log = log
        self._base = config.base_url.rstrip("/")
        self._random = random.Random()

    def _raise_for(self, status: int, body: Any) -> str:
        code, description = _error_code(body)
        message = f"{code or 'error'}: {description}".strip()
        if status == 401:
            raise TokenRejected(f"HTTP 401: {message}")
        if status == 429:
            nxt = body.get("nextAccessTime") if isinstance(body, dict) else None
            moment = parse_next_access(nxt) if isinstance(nxt, str) else None
            if moment is not None:
                raise QuotaError(f"HTTP 429: {message}", max(0.0, moment - self._clock.now()))
            return message
        if status == 403 and code == "900908":
            raise NotSubscribed(
                "HTTP 403 900908: this application is not subscribed to the Enedis API it "
                "calls; subscribe to it on the Data Connect portal (datahub-enedis.fr)"
            )
        if code in STREAM_REFUSALS:
            raise StreamRefused(message, code, status)
        if code == "ADAM-ERR0123":
            raise BeforeActivation(message, code, status)
        if status == 404 and code == "no_data_found":
            raise NoData(message, code, status)
        if 400 <= status < 500 and status not in (401, 403) and code:
            raise EnedisApiError(message, code, status)
        return message

    async def _get(self, url: str, params: dict[str, str], model: Any) -> Any:
        upstream_failures = quota_failures = relogins = 0
        while True:
            ticket = await self._quota.acquire()
            try:
                headers = {"Authorization": await self._tokens.header()}
                self._counters.inc("requests")
                return await request_json(
                    self._http,
                    "GET",
                    url,
                    model=model,
                    timeout=self._config.timeout_s,
                    error_reason=self._raise_for,
                    params=params,
                    headers=headers,
                )
            except TokenRejected:
                relogins += 1
                if relogins > 1:
                    raise
                self._log.info("enedis_token_rejected_relogin")
                self._tokens.invalidate()
            except QuotaError as exc:
                quota_failures += 1
                self._counters.inc("throttled")
                if quota_failures > 4 * self._config.retry_attempts:
                    raise
                wait = min(
                    exc.retry_after if exc.retry_after is not None else 60.0,
                    self._config.max_retry_wait_s,
                )
                self._log.warning("enedis_throttled", wait_s=round(wait, 3))
                self._quota.pause_until(self._clock.now() + wait)
            except UpstreamError as exc:
                upstream_failures += 1
                self._counters.inc("retries")
                if upstream_failures >= self._config.retry_attempts:
                    raise
                wait = min(
                    self._config.retry_base_s * 2 ** (upstream_failures - 1),
                    self._config.max_retry_wait_s,
                ) * (0.5 + self._random.random() / 2)
                self._log.warning("enedis_upstream_retry", error=str(exc), wait_s=round(wait, 3))
                self._quota.release(ticket)
                await self._clock.sleep(wait)
            finally:
                self._quota.release(ticket)

    async def fetch(
        self, prm: str, kind: Kind, direction: Direction, start: date, end: date
    ) -> tuple[MeterSeries, list[str]]:
        """The measurements of one stream for local days [start, end)."""
        key = (kind, direction)
        mode = self._config.mode
        v2_proxy = mode == "conso_api" and self._config.conso_api_version == "v2"
        if mode == "data_connect" or v2_proxy:
            params = {"pointId": prm, "dateDebut": start.isoformat(), "dateFin": end.isoformat()}
            if kind == "max_power":
                params |= {"mesuresPas": "P1D", "grandeurPhysique": "PMA"}
            prefix = "/mesure_synchrone_auto/v2/" if mode == "data_connect" else "/api/"
            body = await self._get(self._base + prefix + V2_NAMES[key], params, V2Response)
            return parse_v2(body, kind, direction)
        if mode == "conso_api":
            params = {"prm": prm, "start": start.isoformat(), "end": end.isoformat()}
            url = f"{self._base}/api/{CONSO_V5_NAMES[key]}"
            return parse_v5(await self._get(url, params, V5Reading), kind, direction)
        api, name = V5_NAMES[key]
        params = {"usage_point_id": prm, "start": start.isoformat(), "end": end.isoformat()}
        wrapped = await self._get(f"{self._base}/{api}/v5/{name}", params, V5Wrapped)
        return parse_v5(wrapped.meter_reading, kind, direction)

    @property
    def has_contract_endpoint(self) -> bool:
        return self._config.mode != "conso_api"

    async def subscribed_power_kva(self, prm: str) -> float | None:
        """The subscribed power from the customers API contract of `prm`."""
        url = f"{self._base}/customers_upc/v5/usage_points/contracts"
        body = await self._get(url, {"usage_point_id": prm}, ContractsResponse)
        return body.subscribed_kva()
