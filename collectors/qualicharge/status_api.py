"""A local QualiCharge API serving what the collector uses, as strictly as the real one.

    POST /api/v1/auth/token          OAuth2 password form → {"access_token","token_type"}
    GET  /api/v1/dynamique/status/   latest statuses; `from`, repeatable `station`, `pdc`

Like the FastAPI application it stands for: a missing form field or a malformed query value
is a 422 with pydantic-style `detail` errors; no bearer token is a 401 `{"detail": "Not
authenticated"}`; a bad or expired token a 401 `{"message": "Authentication failed: ..."}`
with `WWW-Authenticate: Bearer`; `from` must be a date-time in the past; ids must match the
itinerance id pattern; a non-superuser sees only the active charge points of its operational
units. Tokens are HS256 JWTs living `lifetime_s` (1800 s) on the simulator's clock.

Tests steer it: `advance()` changes some statuses, `fail_next()` injects errors (429 with
Retry-After, 500, malformed JSON), `clock` can be replaced to expire tokens without waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from collectors.qualicharge.fake import Fleet

__all__ = ["StatusApi", "run_status_api"]

_ID = re.compile(r"(?:(?:^|,)(^[A-Z]{2}[A-Z0-9]{4,33}$|Non concerné))+$")
_ETATS = ("en_service", "en_service", "en_service", "hors_service", "inconnu")
_OCCUPATIONS = ("libre", "libre", "occupe", "occupe", "reserve", "inconnu")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid(kind: str, loc: list[Any], msg: str, value: Any) -> web.Response:
    detail = [{"type": kind, "loc": loc, "msg": msg, "input": value}]
    return web.json_response({"detail": detail}, status=422)


def _unauthorized(message: str) -> web.Response:
    return web.json_response(
        {"message": f"Authentication failed: {message}"},
        status=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    malformed: bool


class StatusApi:
    """The simulated API's state: account, statuses, injected faults."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        username: str = "cpo-demo",
        password: str = "demo-password",
        operational_units: list[str] | None = None,
        lifetime_s: int = 1800,
        clock: Callable[[], float] = time.time,
        seed: int = 3,
    ) -> None:
        self.fleet = fleet
        self.username = username
        self.password = password
        self.operational_units = set(operational_units or fleet.operational_units)
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._rng = random.Random(seed)
        self._secret = secrets.token_bytes(32)
        self._faults: list[_Fault] = []
        self.logins = 0
        self.requests: list[dict[str, list[str]]] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        now = clock()
        for pdc in fleet.pdcs:
            if not pdc.station_deleted:
                self._set(pdc.id_pdc_itinerance, now - self._rng.randint(60, 86_400))

    def _set(self, pdc: str, moment: float) -> None:
        self.statuses[pdc] = {
            "id_pdc_itinerance": pdc,
            "etat_pdc": self._rng.choice(_ETATS),
            "occupation_pdc": self._rng.choice(_OCCUPATIONS),
            "horodatage": datetime.fromtimestamp(int(moment), UTC).isoformat(),
            "etat_prise_type_2": self._rng.choice(("fonctionnel", "inconnu", None)),
            "etat_prise_type_combo_ccs": None,
            "etat_prise_type_chademo": None,
            "etat_prise_type_ef": None,
        }

    def advance(self, changes: int = 5) -> list[str]:
        """Give `changes` charge points a new status stamped now; returns them."""
        chosen = self._rng.sample(sorted(self.statuses), min(changes, len(self.statuses)))
        for pdc in chosen:
            self._set(pdc, self.clock())
        return chosen

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        """The next `times` status requests answer `status` (429 carries Retry-After)."""
        self._faults.extend(_Fault(status, retry_after, False) for _ in range(times))

    def malformed_next(self, times: int = 1) -> None:
        """The next `times` status requests answer 200 with a body that is not JSON."""
        self._faults.extend(_Fault(200, None, True) for _ in range(times))

    def token(self, subject: str, issued: float | None = None) -> str:
        """A signed token for `subject` issued at `issued` (default: now)."""
        now = int(self.clock() if issued is None else issued)
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(
            json.dumps(
                {
                    "iss": "http://qualicharge-simulator",
                    "sub": subject,
                    "exp": now + self.lifetime_s,
                    "iat": now,
                    "email": f"{subject}@example.org",
                    "aud": "qualicharge",
                    "scope": "",
                }
            ).encode()
        )
        signature = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{_b64(signature.digest())}"

    def _check(self, token: str) -> str | None:
        """None when the token is valid, else the reason it is not."""
        try:
            header, payload, signature = token.split(".")
            expected = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256)
            if not hmac.compare_digest(_unb64(signature), expected.digest()):
                return "Unable to decode ID token"
            claims = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return "Unable to decode ID token"
        if claims.get("exp", 0) <= self.clock():
            return "Token signature expired"
        return None

    async def login(self, request: web.Request) -> web.Response:
        if request.content_type not in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            return _invalid("missing", ["body", "username"], "Field required", None)
        form = await request.post()
        for field in ("username", "password"):
            if not form.get(field):
                return _invalid("missing", ["body", field], "Field required", None)
        grant = form.get("grant_type")
        if grant is not None and grant != "password":
            return _invalid(
                "string_pattern_mismatch",
                ["body", "grant_type"],
                "String should match pattern '^password$'",
                grant,
            )
        if form["username"] != self.username or form["password"] != self.password:
            return _unauthorized("Wrong login or password")
        self.logins += 1
        return web.json_response(
            {"access_token": self.token(str(form["username"])), "token_type": "bearer"}
        )

    async def list_statuses(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[7:].strip():
            return web.json_response(
                {"detail": "Not authenticated"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        problem = self._check(authorization[7:].strip())
        if problem:
            return _unauthorized(problem)
        query = request.query
        self.requests.append({key: query.getall(key) for key in set(query.keys())})
        since = None
        if "from" in query:
            raw = query["from"]
            try:
                since = datetime.fromisoformat(raw)
            except ValueError:
                return _invalid(
                    "datetime_from_date_parsing",
                    ["query", "from"],
                    "Input should be a valid datetime or date, invalid character in year",
                    raw,
                )
            since = since.replace(tzinfo=UTC) if since.tzinfo is None else since
            if since.timestamp() >= self.clock():
                return _invalid(
                    "datetime_past", ["query", "from"], "Input should be in the past", raw
                )
        for name in ("station", "pdc"):
            for index, value in enumerate(query.getall(name, [])):
                if not _ID.match(value):
                    return _invalid(
                        "string_pattern_mismatch",
                        ["query", name, index],
                        f"String should match pattern '{_ID.pattern}'",
                        value,
                    )
        if self._faults:
            fault = self._faults.pop(0)
            if fault.malformed:
                return web.Response(text='[{"id_pdc_itinerance": ', content_type="application/json")
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            return web.json_response(
                {"detail": "simulated failure"}, status=fault.status, headers=headers
            )
        return web.json_response(
            self._select(query.getall("station", []), query.getall("pdc", []), since)
        )

    def _select(
        self, stations: list[str], pdcs: list[str], since: datetime | None
    ) -> list[dict[str, Any]]:
        active = {
            pdc.id_pdc_itinerance: pdc
            for pdc in self.fleet.pdcs
            if not pdc.station_deleted and pdc.operational_unit in self.operational_units
        }
        wanted = {name for name, pdc in active.items() if pdc.id_station_itinerance in stations}
        wanted |= set(pdcs)
        found = []
        for name, status in sorted(self.statuses.items()):
            if name not in active or (wanted and name not in wanted):
                continue
            if since is not None and datetime.fromisoformat(status["horodatage"]) < since:
                continue
            found.append(status)
        return found

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/auth/token", self.login)
        app.router.add_get("/api/v1/dynamique/status/", self.list_statuses)
        return app


@asynccontextmanager
async def run_status_api(api: StatusApi, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `api` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
