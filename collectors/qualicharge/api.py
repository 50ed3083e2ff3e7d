"""QualiCharge API client: OAuth2 password login and the latest charge point statuses.

    POST /api/v1/auth/token          form `username`, `password` → {"access_token", "token_type"}
    GET  /api/v1/dynamique/status/   `from`, repeatable `station` and `pdc` → [StatusRead]

The token is a JWT living 30 minutes, with no refresh token: the client logs in again
`relogin_margin_s` before its `exp` (read from the token; 30 minutes after login when it
cannot be read), and once more if the API answers 401 anyway (token revoked, clock skew).
Long id lists are split over several requests (`ids_per_request`) to keep URLs short.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict, TypeAdapter, field_validator

from collectors.qualicharge.config import QualiChargeApiConfig
from daemon.errors import AuthError
from daemon.http import request_json, with_retries
from daemon.metrics import Counters

__all__ = ["Status", "StatusClient", "Token"]

TOKEN_LIFETIME_S = 30 * 60


class Token(BaseModel):
    """The login answer."""

    model_config = ConfigDict(extra="ignore")

    access_token: str
    token_type: str


class Status(BaseModel):
    """One charge point's latest status (`StatusRead`)."""

    model_config = ConfigDict(extra="ignore")

    id_pdc_itinerance: str
    etat_pdc: Literal["en_service", "hors_service", "inconnu"]
    occupation_pdc: Literal["libre", "occupe", "reserve", "inconnu"]
    horodatage: datetime
    etat_prise_type_2: Literal["fonctionnel", "hors_service", "inconnu"] | None = None
    etat_prise_type_combo_ccs: Literal["fonctionnel", "hors_service", "inconnu"] | None = None
    etat_prise_type_chademo: Literal["fonctionnel", "hors_service", "inconnu"] | None = None
    etat_prise_type_ef: Literal["fonctionnel", "hors_service", "inconnu"] | None = None

    @field_validator("horodatage")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_STATUSES = TypeAdapter(list[Status])


def _expiry(token: str, issued: float) -> float:
    """`exp` of a JWT (not verified: only to know when to log in again)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return issued + TOKEN_LIFETIME_S


def _reason(status: int, body: Any) -> str:
    if isinstance(body, dict):
        if isinstance(body.get("detail"), list) and body["detail"]:
            first = body["detail"][0]
            where = ".".join(str(part) for part in first.get("loc", []))
            return f"{first.get('msg', 'invalid request')} ({where})"
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300] if body else "no body"


class StatusClient:
    """Logs in and reads statuses; one instance per configured API."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        config: QualiChargeApiConfig,
        counters: Counters,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._config = config
        self._counters = counters
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self.logins = 0
        self._log = structlog.get_logger("chargeflux.qualicharge.api")

    async def _login(self) -> str:
        self._counters.inc("requests")
        issued = self._clock()
        token = await request_json(
            self._http,
            "POST",
            f"{self._config.base_url}/api/v1/auth/token",
            model=Token,
            timeout=self._config.timeout_s,
            error_reason=_reason,
            data={"username": self._config.username, "password": self._password()},
        )
        self.logins += 1
        self._token = token.access_token
        self._expires = _expiry(token.access_token, issued)
        self._log.info("qualicharge_login", expires_in_s=round(self._expires - issued))
        return self._token

    def _password(self) -> str:
        return self._config.password.get_secret_value()

    async def token(self) -> str:
        """A token valid for at least `relogin_margin_s` more seconds."""
        if self._token is None or self._clock() >= self._expires - self._config.relogin_margin_s:
            return await self._login()
        return self._token

    async def _get(self, params: list[tuple[str, str]]) -> list[Status]:
        async def once() -> list[Status]:
            token = await self.token()
            self._counters.inc("requests")
            try:
                return await self._fetch(token, params)
            except AuthError:
                self._token = None  # revoked or expired early: one fresh login, then give up
                token = await self.token()
                self._counters.inc("requests")
                return await self._fetch(token, params)

        def on_retry(exc: BaseException) -> None:
            self._counters.inc("retries")
            self._log.warning("qualicharge_status_retry", error=str(exc))

        return await with_retries(
            once,
            attempts=self._config.retries,
            max_wait=self._config.retry_max_wait_s,
            on_retry=on_retry,
        )

    async def _fetch(self, token: str, params: list[tuple[str, str]]) -> list[Status]:
        found: list[Status] = await request_json(
            self._http,
            "GET",
            f"{self._config.base_url}/api/v1/dynamique/status/",
            model=_STATUSES,
            timeout=self._config.timeout_s,
            error_reason=_reason,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )
        return found

    async def statuses(
        self,
        since: datetime | None,
        stations: Sequence[str] = (),
        pdcs: Sequence[str] = (),
    ) -> list[Status]:
        """Latest statuses changed at or after `since`, for these stations and charge points
        (all those the account may read when both are empty)."""
        base: list[tuple[str, str]] = []
        if since is not None:
            base.append(("from", since.astimezone(UTC).isoformat()))
        ids = [("station", value) for value in stations] + [("pdc", value) for value in pdcs]
        if not ids:
            return await self._get(base)
        step = self._config.ids_per_request
        found: dict[str, Status] = {}
        for first in range(0, len(ids), step):
            for status in await self._get(base + ids[first : first + step]):
                found[status.id_pdc_itinerance] = status
        return list(found.values())
