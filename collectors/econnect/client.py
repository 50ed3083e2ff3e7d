"""The eConnect Masterdata API client: the paged pull of a business partner's stations.

`GET {base}/masterdata/cpos/{business_partner}/chargingstations?page=N&size=S` with HTTP
Basic auth, pages numbered from 0, until a page comes back empty (as the seed script does).
Each page is fetched once, with bounded retries on 5xx/timeouts/429 (`with_retries`); a 401
or 403 raises `AuthError` naming the user (never the password); a page that is not JSON or
has no `content` list raises `DataError`. Records inside a page are read leniently
(`models.read_stations`): bad ones are listed, not fatal.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from structlog.typing import FilteringBoundLogger

from collectors.econnect.config import EconnectConfig
from collectors.econnect.models import Page, ParsedStations, read_stations
from daemon.errors import AuthError, DataError
from daemon.http import request_json, with_retries
from daemon.metrics import Counters

__all__ = ["MasterdataClient", "Pull"]


@dataclass(frozen=True)
class Pull:
    """The result of one complete pull: every page's stations, read."""

    parsed: ParsedStations
    pages: int


class MasterdataClient:
    """Reads a business partner's stations; the `ClientSession` is injected."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        config: EconnectConfig,
        *,
        counters: Counters | None = None,
        log: FilteringBoundLogger | None = None,
    ) -> None:
        self._http = http
        self._config = config
        self._counters = counters or Counters("econnect")
        self._log = log or structlog.get_logger("chargeflux.econnect")
        credentials = f"{config.username}:{config.password.get_secret_value()}".encode()
        self._headers = {
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
        }
        self._url = f"{config.base_url}/masterdata/cpos/{config.business_partner}/chargingstations"

    async def page(self, number: int) -> list[Any]:
        """The `content` of page `number` (retried on transient failures)."""

        async def once() -> Page:
            self._counters.inc("requests")
            page: Page = await request_json(
                self._http,
                "GET",
                self._url,
                model=Page,
                params={"page": str(number), "size": str(self._config.page_size)},
                timeout=self._config.timeout_s,
                ssl=self._config.verify_tls,
                headers=self._headers,
            )
            return page

        def on_retry(exc: BaseException) -> None:
            self._counters.inc("retries")
            self._log.warning("econnect_page_retry", page=number, reason=str(exc))

        try:
            result = await with_retries(
                once,
                attempts=self._config.retries,
                max_wait=self._config.retry_max_wait_s,
                on_retry=on_retry,
            )
        except AuthError as exc:
            raise AuthError(
                f"eConnect refused the credentials of user {self._config.username!r} for "
                f"business partner {self._config.business_partner!r} (check username, "
                f"password and business partner): {exc}"
            ) from None
        except DataError as exc:
            raise DataError(f"eConnect page {number}: {exc}") from exc
        return result.content

    async def pull(self) -> Pull:
        """Every page from 0 until an empty one; each page requested once."""
        pages: list[tuple[int, list[Any]]] = []
        for number in range(self._config.max_pages):
            content = await self.page(number)
            if not content:
                parsed = read_stations(pages)
                return Pull(parsed=parsed, pages=number)
            pages.append((number, content))
        raise DataError(
            f"eConnect returned more than {self._config.max_pages} non-empty pages; "
            "raise max_pages if the fleet really is that large"
        )
