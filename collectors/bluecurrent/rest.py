"""The BlueCurrent REST API (`.../app/bc_api/api/v2.0`), authenticated with `Token <token>`.

The token is the session token of the websocket login (`Auth`). A 401/403 drops it and logs
in again once; transient failures are retried by `daemon.http.with_retries`. Calls:
`chargepointstatus`, `getcontracts`, `getgrids` and `gettransactions` (POST, pages from 1,
`next_page` null on the last page).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from collectors.bluecurrent.client import Auth, InvalidToken
from collectors.bluecurrent.models import (
    ChargePointStatus,
    ChargePointStatusResponse,
    Contract,
    ContractsResponse,
    Grid,
    GridsResponse,
    Transaction,
    TransactionsPage,
    TransactionsResponse,
)
from daemon.errors import AuthError
from daemon.http import request_json, with_retries
from daemon.metrics import Counters

__all__ = ["RestClient"]

T = TypeVar("T")


def _reason(status: int, body: Any) -> str:
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300] if body else "no body"


class RestClient:
    """Typed calls to the REST API; the `Authorization` header comes from `auth`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api_url: str,
        auth: Auth,
        counters: Counters,
        *,
        timeout: float = 30.0,
        attempts: int = 3,
    ) -> None:
        self._http = http
        self._base = api_url.rstrip("/")
        self._auth = auth
        self._counters = counters
        self._timeout = timeout
        self._attempts = attempts

    async def _call(self, method: str, path: str, model: type[T], **kwargs: Any) -> T:
        for attempt in range(2):
            token = await self._auth.ensure()
            headers = {"Authorization": f"Token {token}"}

            def send(headers: dict[str, str] = headers) -> Awaitable[T]:
                self._counters.inc("requests")
                return request_json(
                    self._http,
                    method,
                    f"{self._base}{path}",
                    model=model,
                    timeout=self._timeout,
                    error_reason=_reason,
                    headers=headers,
                    **kwargs,
                )

            try:
                result: T = await with_retries(
                    send, attempts=self._attempts, on_retry=self._on_retry
                )
                return result
            except InvalidToken:
                raise
            except AuthError:
                self._auth.forget(token)
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _on_retry(self, exc: BaseException) -> None:
        self._counters.inc("retries")

    async def charge_point_status(self, evse_id: str) -> ChargePointStatus:
        """`GET /chargepointstatus?evse_id=` (dates parsed)."""
        found = await self._call(
            "GET", "/chargepointstatus", ChargePointStatusResponse, params={"evse_id": evse_id}
        )
        return found.data

    async def contracts(self) -> list[Contract]:
        found = await self._call("GET", "/getcontracts", ContractsResponse)
        return found.contracts

    async def grids(self) -> list[Grid]:
        found = await self._call("GET", "/getgrids", GridsResponse)
        return found.grids

    async def transactions(
        self, evse_id: str, *, page: int = 1, newest_first: bool = True
    ) -> TransactionsPage:
        """One page (from 1) of a charge point's transactions, by stop time."""
        params = {
            "page": str(page),
            "sort_field": "stoppedtimestamp",
            "sort_field_order": "DESC" if newest_first else "ASC",
        }
        body = {"chargepoints": [{"chargepoint_id": evse_id}]}
        found = await self._call(
            "POST", "/gettransactions", TransactionsResponse, params=params, json=body
        )
        return found.data

    async def iterate_transactions(
        self,
        evse_id: str,
        *,
        newest_first: bool = True,
        stop: Callable[[TransactionsPage], bool] | None = None,
    ) -> AsyncIterator[TransactionsPage]:
        """Every page, following `next_page`; `stop(page)` true ends after that page."""
        page: int | None = 1
        seen: set[int] = set()
        while page is not None and page not in seen:
            seen.add(page)
            found = await self.transactions(evse_id, page=page, newest_first=newest_first)
            yield found
            if stop is not None and stop(found):
                return
            page = found.next_page

    async def all_transactions(self, evse_id: str) -> list[Transaction]:
        """Every transaction of a charge point, newest first (CLI use)."""
        return [tx async for page in self.iterate_transactions(evse_id) for tx in page.transactions]
