"""A local eConnect Masterdata API (aiohttp.web) for tests and `chargeflux demo`.

It serves `GET /masterdata/cpos/{business_partner}/chargingstations?page=N&size=S` the way
the real API does: Spring-style pages (`content`, `number`, `size`, `totalElements`,
`totalPages`, `first`, `last`, `empty`), pages from 0, an empty `content` past the end.
It is strict: no or wrong Basic credentials → 401 with `WWW-Authenticate`; another business
partner → 403; a missing, non-integer or negative `page`, a `size` outside 1..100 or an
unknown query parameter → 400. It counts the requests per page (`hits`) and can inject bad
records, transient 5xx or 429 answers (with Retry-After) and a page that is not JSON.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from aiohttp import web

__all__ = ["MODELS", "STATES", "TYPES", "MasterdataSimulator", "make_stations", "run_simulator"]

MODELS = (
    "Alfen Eve Single Pro-line",
    "Alfen Eve Double Pro-line",
    "ABB Terra AC W22",
    "ABB Terra 54 CJG",
    "Mennekes AMTRON Charge Control",
    "Compleo Solo",
)
STATES = ("OPERATIONAL", "NON_OPERATIONAL", "PLANNED")
TYPES = ("AC", "DC")
_MAX_SIZE = 100

BAD_RECORDS: tuple[Any, ...] = (
    {"modelInfo": "ABB Terra AC W22", "state": "OPERATIONAL", "type": "AC"},
    {"id": "BAD-TYPE-1", "modelInfo": 42, "state": "OPERATIONAL", "type": "AC"},
    {"id": "BAD-TYPE-2", "modelInfo": "Compleo Solo", "state": ["PLANNED"], "type": "AC"},
    {"id": {"nested": True}, "modelInfo": "Compleo Solo", "state": "PLANNED"},
    "not-a-station",
)


def make_stations(count: int = 320, *, seed: int = 7, undated: int = 4) -> list[dict[str, Any]]:
    """`count` plausible stations across models, states and types (deterministic).

    The last `undated` planned stations have no `installDate` and one has an unreadable one,
    as happens with stations not yet commissioned."""
    rng = random.Random(seed)
    origin = datetime(2018, 1, 1, tzinfo=UTC)
    stations: list[dict[str, Any]] = []
    for index in range(count):
        model = rng.choice(MODELS)
        state = rng.choices(STATES, weights=(70, 20, 10))[0]
        installed = origin + timedelta(days=rng.randrange(0, 6 * 365), hours=rng.choice((0, 9)))
        stations.append(
            {
                "id": f"FR*CFX*E{index:05d}",
                "name": f"Station {index}",
                "modelInfo": model,
                "vendor": model.split()[0],
                "installDate": installed.isoformat().replace("+00:00", "Z"),
                "type": "DC" if "54" in model else rng.choice(TYPES[:1] * 3 + TYPES[1:]),
                "state": state,
                "address": {"street": f"{index} rue de la Paix", "zip": "75002", "city": "Paris"},
                "connectors": [{"id": 1, "standard": "IEC_62196_T2"}],
            }
        )
    for position, station in enumerate(reversed(stations[-undated:] if undated else [])):
        station["state"] = "PLANNED"
        if position == 0:
            station["installDate"] = "sometime in 2025"
        else:
            del station["installDate"]
    return stations


class MasterdataSimulator:
    """The simulated API; `hits[page]` counts the successful requests for each page."""

    def __init__(
        self,
        stations: list[Any] | None = None,
        *,
        business_partner: str = "100042",
        username: str = "demo",
        password: str = "demo-password",
        bad_records: int = 0,
        failures: int = 0,
        failure_status: int = 503,
        malformed_page: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.stations: list[Any] = list(make_stations() if stations is None else stations)
        step = max(1, len(self.stations) // (bad_records + 1)) if bad_records else 0
        for index in range(bad_records):
            bad = BAD_RECORDS[index % len(BAD_RECORDS)]
            self.stations.insert((index + 1) * step + index, bad)
        self.business_partner = business_partner
        self.username = username
        self.password = password
        self.failures = failures
        self.failure_status = failure_status
        self.malformed_page = malformed_page
        self.retry_after = retry_after
        self.hits: Counter[int] = Counter()
        self.requests = 0
        self.rejected: Counter[int] = Counter()
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(
            "/masterdata/cpos/{business_partner}/chargingstations", self._chargingstations
        )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host:port` (0: any free port); returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _error(self, status: int, error: str, message: str, path: str) -> web.Response:
        self.rejected[status] += 1
        body = {
            "timestamp": datetime.now(UTC).isoformat(),
            "status": status,
            "error": error,
            "message": message,
            "path": path,
        }
        headers = {"WWW-Authenticate": 'Basic realm="masterdata"'} if status == 401 else None
        return web.json_response(body, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.username and password == self.password

    async def _chargingstations(self, request: web.Request) -> web.Response:
        self.requests += 1
        path = request.path
        if not self._authorized(request):
            return self._error(401, "Unauthorized", "Full authentication is required", path)
        if request.match_info["business_partner"] != self.business_partner:
            return self._error(403, "Forbidden", "Access to business partner denied", path)
        unknown = set(request.query) - {"page", "size"}
        if unknown:
            return self._error(400, "Bad Request", f"unknown parameter {sorted(unknown)}", path)
        page = _integer(request.query.get("page"))
        size = _integer(request.query.get("size"))
        if page is None or page < 0:
            return self._error(400, "Bad Request", "page must be an integer >= 0", path)
        if size is None or not 1 <= size <= _MAX_SIZE:
            return self._error(400, "Bad Request", f"size must be 1..{_MAX_SIZE}", path)
        if self.failures > 0:
            self.failures -= 1
            phrase = HTTPStatus(self.failure_status).phrase
            response = self._error(self.failure_status, phrase, "try later", path)
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        self.hits[page] += 1
        if page == self.malformed_page:
            return web.Response(text="<html>Gateway error</html>", content_type="text/html")
        total = len(self.stations)
        content = self.stations[page * size : (page + 1) * size]
        pages = math.ceil(total / size)
        return web.json_response(
            {
                "content": content,
                "pageable": {"pageNumber": page, "pageSize": size, "offset": page * size},
                "totalElements": total,
                "totalPages": pages,
                "number": page,
                "size": size,
                "numberOfElements": len(content),
                "first": page == 0,
                "last": page >= pages - 1,
                "empty": not content,
            }
        )


def _integer(text: str | None) -> int | None:
    if text is None or not text.strip().lstrip("-").isdigit():
        return None
    return int(text)


@asynccontextmanager
async def run_simulator(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[MasterdataSimulator]:
    """A started simulator (`options` as for `MasterdataSimulator`), stopped on exit."""
    simulator = MasterdataSimulator(**options)
    await simulator.start(host, port)
    try:
        yield simulator
    finally:
        await simulator.stop()
