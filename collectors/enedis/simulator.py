"""A local simulator of Enedis Data Connect 2026, the Conso API proxy and the v5 APIs.

Serves, with the public formats and the real API's strictness:

- `POST /oauth2/v3/token` (client credentials, in the form or Basic auth; 12600 s tokens);
- `GET /mesure_synchrone_auto/v2/{courbe_de_charge_consommation, courbe_de_charge_production,
  consommation_quotidienne, production_quotidienne, puissance_conso_max_quotidienne}`
  (`pointId`, `dateDebut`, `dateFin`; max power also `mesuresPas=P1D`, `grandeurPhysique=PMA`);
- `GET /{metering_data_clc,...}/v5/{consumption_load_curve,...}` (`usage_point_id`, `start`,
  `end`; `{"meter_reading": ...}`) and `GET /customers_upc/v5/usage_points/contracts`;
- the Conso API proxy `GET /api/{type}`: v2 type names with `pointId/dateDebut/dateFin`
  (v2 JSON passed through), v5 names with `prm/start/end` (flattened `meter_reading`), Enedis
  errors wrapped as `{"status","message","error"}`, bearer tokens of its own.

Requests are refused as Enedis does: missing or malformed parameters, windows over 7 days
(curves) or 365 days (daily), periods beyond the history kept (24/36 months + 15 days) or in
the future, unknown tokens, and each account's quota (5/s and 1000/h by default, sliding
windows) answers 429 with the gateway's throttling body and `nextAccessTime`. Fake clients
come from `sim_data.sandbox_meters()`. Time comes from an injected clock. Faults (5xx,
malformed JSON, any body) can be queued with `inject()`. Run alone with
`python -m collectors.enedis.simulator --port 8080`.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from collectors.enedis.quota import Clock, WallClock
from collectors.enedis.sim_data import PARIS, Meter, daily_energy, day_slots, peak, sandbox_meters

__all__ = ["EnedisSimulator", "Fault"]

V2 = {
    "courbe_de_charge_consommation": ("load_curve", "consumption"),
    "courbe_de_charge_production": ("load_curve", "production"),
    "consommation_quotidienne": ("daily", "consumption"),
    "production_quotidienne": ("daily", "production"),
    "puissance_conso_max_quotidienne": ("max_power", "consumption"),
}
V5 = {
    ("metering_data_clc", "consumption_load_curve"): ("load_curve", "consumption"),
    ("metering_data_plc", "production_load_curve"): ("load_curve", "production"),
    ("metering_data_dc", "daily_consumption"): ("daily", "consumption"),
    ("metering_data_dp", "daily_production"): ("daily", "production"),
    ("metering_data_dcmp", "daily_consumption_max_power"): ("max_power", "consumption"),
}
CONSO_V5 = {
    "consumption_load_curve": ("load_curve", "consumption"),
    "production_load_curve": ("load_curve", "production"),
    "daily_consumption": ("daily", "consumption"),
    "daily_production": ("daily", "production"),
    "consumption_max_power": ("max_power", "consumption"),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PRM = re.compile(r"^\d{14}$")
ERRORS = {
    "ADAM-DC-0008": (403, "No consent can be found for this customer and this usage point"),
    "ADAM-DC-0007": (400, "The requester is not the holder of this usage point"),
    "ADAM-ERR0069": (400, "The usage point has no measure of this direction"),
    "ADAM-ERR0075": (400, "The load curve collection is not enabled for this usage point"),
    "ADAM-ERR0123": (
        400,
        "The requested period cannot be anterior to the meter's last activation date",
    ),
    "no_data_found": (404, "No measure data found for the requested period"),
    "technical_error": (500, "A technical error occurred"),
}


@dataclass
class Fault:
    """A canned answer served instead of the next data request."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class _Refused(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


@dataclass
class _Request:
    api: str
    kind: str
    direction: str
    prm: str
    first: str
    end: str


class EnedisSimulator:
    """Data Connect 2026 + Conso API + v5, seeded with the sandbox's fake clients."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        meters: list[Meter] | None = None,
        clients: dict[str, str] | None = None,
        conso_tokens: set[str] | None = None,
        per_second: int = 5,
        per_hour: int = 1000,
        token_lifetime: int = 12600,
        unsubscribed: set[str] | None = None,
    ) -> None:
        self.clock = clock or WallClock()
        self.meters = {m.prm: m for m in (meters if meters is not None else sandbox_meters())}
        self.clients = clients if clients is not None else {"demo-client": "demo-secret"}
        self.conso_tokens = conso_tokens if conso_tokens is not None else {"demo-conso-token"}
        self.limits = ((per_second, 1.0), (per_hour, 3600.0))
        self.token_lifetime = token_lifetime
        self.unsubscribed = unsubscribed or set()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.faults: deque[Fault] = deque()
        self.window_requests: Counter[tuple[str, str, str, str, str]] = Counter()
        self.status_counts: Counter[int] = Counter()
        self.request_times: list[float] = []
        self.logins = 0
        self._seen: dict[str, tuple[deque[float], deque[float]]] = {}
        self.url = ""

    # -- control -----------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/v3/token", self._token)
        app.router.add_get("/mesure_synchrone_auto/v2/{name}", self._v2)
        app.router.add_get("/customers_upc/v5/usage_points/contracts", self._contracts)
        app.router.add_get("/api/{name}", self._conso)
        app.router.add_get("/{api}/v5/{name}", self._v5)
        return app

    @asynccontextmanager
    async def running(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.url = f"http://{host}:{sockets[0].getsockname()[1]}"
        try:
            yield self.url
        finally:
            await runner.cleanup()

    # -- helpers ------------------------------------------------------------------------
    def today(self) -> date:
        return datetime.fromtimestamp(self.clock.now(), PARIS).date()

    def _throttle(self, account: str) -> float | None:
        """None when the request fits the quota (and is counted), else the next access time."""
        now = self.clock.now()
        logs = self._seen.setdefault(account, (deque(), deque()))
        for log, (limit, period) in zip(logs, self.limits, strict=True):
            while log and log[0] <= now - period:
                log.popleft()
            if len(log) >= limit:
                return log[0] + period
        for log in logs:
            log.append(now)
        self.request_times.append(now)
        return None

    def _bearer(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return header[7:].strip() if header.startswith("Bearer ") else None

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    def _fault(self) -> web.Response | None:
        if not self.faults:
            return None
        fault = self.faults.popleft()
        return web.Response(
            status=fault.status,
            text=fault.body,
            headers=fault.headers,
            content_type=fault.content_type,
        )

    # -- token --------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._json(
                400, {"error": "invalid_request", "error_description": "form-encoded body expected"}
            )
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = secret = ""
        if form.get("grant_type") != "client_credentials":
            return self._json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        if not client_id or self.clients.get(client_id) != secret:
            return self._json(
                401,
                {"error": "invalid_client", "error_description": "Client Authentication failed."},
            )
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (client_id, self.clock.now() + self.token_lifetime)
        self.logins += 1
        return self._json(
            200,
            {
                "access_token": token,
                "scope": "am_application_scope default",
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            },
        )

    # -- gateway checks -----------------------------------------------------------------
    def _gateway(self, request: web.Request, conso: bool) -> web.Response | str:
        """The account behind the request, or the gateway's refusal (401/403/429)."""
        token = self._bearer(request)
        if conso:
            if token not in self.conso_tokens:
                return self._json(
                    401,
                    {
                        "status": 401,
                        "message": "Invalid or missing token",
                        "error": "invalid_token",
                    },
                )
            account = f"conso:{token}"
        else:
            owner = self.tokens.get(token or "")
            if owner is None and token in self.conso_tokens and request.path.count("/v5/"):
                account = f"static:{token}"
            elif owner is None or owner[1] <= self.clock.now():
                self.tokens.pop(token or "", None)
                return self._json(
                    401,
                    {
                        "code": "900901",
                        "message": "Invalid Credentials",
                        "description": "Invalid Credentials. Make sure you have provided the "
                        "correct security credentials",
                    },
                )
            else:
                if owner[0] in self.unsubscribed:
                    return self._json(
                        403,
                        {
                            "code": "900908",
                            "message": "Resource forbidden ",
                            "description": "User is NOT authorized to access the Resource. "
                            "API Subscription validation failed.",
                        },
                    )
                account = owner[0]
        next_access = self._throttle(account)
        if next_access is not None:
            self.status_counts[429] += 1
            wait = max(1, math.ceil(next_access - self.clock.now()))
            moment = datetime.fromtimestamp(math.ceil(next_access), UTC)
            if conso:
                return self._json(
                    429,
                    {"status": 429, "message": "Too many requests", "error": "rate_limited"},
                    {"Retry-After": str(wait)},
                )
            return self._json(
                429,
                {
                    "code": "900804",
                    "message": "Message throttled out",
                    "description": "You have exceeded your quota",
                    "nextAccessTime": moment.strftime("%Y-%b-%d %H:%M:%S+0000 UTC"),
                },
            )
        return account

    # -- validation and data ------------------------------------------------------------
    def _dates(self, kind: str, first_text: str | None, end_text: str | None) -> tuple[date, date]:
        for name, text in (("start", first_text), ("end", end_text)):
            if not text or not _DATE.match(text):
                raise _Refused(400, "invalid_request", f"{name} date must be YYYY-MM-DD")
        try:
            first, end = date.fromisoformat(first_text or ""), date.fromisoformat(end_text or "")
        except ValueError:
            raise _Refused(400, "invalid_request", "invalid date") from None
        today = self.today()
        if first >= end:
            raise _Refused(400, "invalid_request", "start date must be before end date")
        if end > today:
            raise _Refused(400, "invalid_request", "end date cannot be after today")
        most = 7 if kind == "load_curve" else 365
        if (end - first).days > most:
            raise _Refused(400, "invalid_request", f"period longer than {most} days")
        months = 24 if kind == "load_curve" else 36
        index = today.year * 12 + today.month - 1 - months
        year, month = divmod(index, 12)
        floor = date(year, month + 1, 1)
        floor = floor.replace(
            day=min(
                today.day, ((floor + timedelta(days=31)).replace(day=1) - timedelta(days=1)).day
            )
        )
        if first < floor - timedelta(days=15):
            raise _Refused(400, "invalid_request", "start date is beyond the history available")
        return first, end

    def _meter(self, prm: str | None, kind: str, direction: str, first: date) -> Meter:
        if not prm or not _PRM.match(prm):
            raise _Refused(400, "invalid_request", "usage point id must be 14 digits")
        meter = self.meters.get(prm)
        if meter is None or meter.revoked:
            raise _Refused(*self._named("ADAM-DC-0008"))
        if meter.moved:
            raise _Refused(*self._named("ADAM-DC-0007"))
        if not (meter.consumption if direction == "consumption" else meter.production):
            raise _Refused(*self._named("ADAM-ERR0069"))
        if kind == "load_curve" and not meter.load_curve:
            raise _Refused(*self._named("ADAM-ERR0075"))
        if first < meter.activation:
            raise _Refused(*self._named("ADAM-ERR0123"))
        return meter

    @staticmethod
    def _named(code: str) -> tuple[int, str, str]:
        status, description = ERRORS[code]
        return status, code, description

    def _points(
        self, meter: Meter, kind: str, direction: str, first: date, end: date
    ) -> list[tuple[str | None, str, str]]:
        out: list[tuple[str | None, str, str]] = []
        day = first
        while day < end:
            slots = day_slots(meter, direction, day)
            day += timedelta(days=1)
            if slots is None:
                continue
            if kind == "load_curve":
                out += [
                    (
                        None if s.value is None else str(int(s.value)),
                        s.end_text,
                        f"PT{s.seconds // 60}M",
                    )
                    for s in slots
                ]
            elif kind == "daily":
                energy = daily_energy(slots)
                out.append(
                    (
                        None if energy is None else str(int(energy)),
                        (day - timedelta(days=1)).isoformat(),
                        "P1D",
                    )
                )
            else:
                top = peak(meter, slots)
                stamp = f"{day - timedelta(days=1)} 00:00:00"
                out.append((str(int(top[0])), top[1], "P1D") if top else (None, stamp, "P1D"))
        if not out:
            raise _Refused(*self._named("no_data_found"))
        return out

    def _v2_body(self, req: _Request, points: list[tuple[str | None, str, str]]) -> dict[str, Any]:
        physical, unit = {
            "load_curve": ("PA", "W"),
            "daily": ("EA", "Wh"),
            "max_power": ("PMA", "VA"),
        }[req.kind]
        return {
            "idPrm": req.prm,
            "etapeMetier": "BRUT",
            "periode": {"dateDebut": req.first, "dateFin": req.end},
            "modeCalcul": "MOYENNE" if req.kind == "load_curve" else "BRUT",
            "grandeur": [
                {
                    "grandeurMetier": "CONS" if req.direction == "consumption" else "PROD",
                    "grandeurPhysique": physical,
                    "unite": unit,
                    "points": [{"v": v, "d": d, "p": p, "n": "B"} for v, d, p in points],
                }
            ],
        }

    def _v5_body(self, req: _Request, points: list[tuple[str | None, str, str]]) -> dict[str, Any]:
        kinds = {
            "load_curve": ("W", "power", "average", None),
            "daily": ("Wh", "energy", "sum", "P1D"),
            "max_power": ("VA", "power", "maximum", "P1D"),
        }
        unit, measure, aggregate, period = kinds[req.kind]
        reading_type = {"unit": unit, "measurement_kind": measure, "aggregate": aggregate}
        if period:
            reading_type["measuring_period"] = period
        readings = []
        for v, d, p in points:
            item: dict[str, Any] = {"value": v, "date": d}
            if req.kind == "load_curve":
                item |= {"interval_length": p, "measure_type": "B"}
            readings.append(item)
        return {
            "usage_point_id": req.prm,
            "start": req.first,
            "end": req.end,
            "quality": "BRUT",
            "reading_type": reading_type,
            "interval_reading": readings,
        }

    def _serve(self, req: _Request) -> dict[str, Any]:
        self.window_requests[
            (req.api, req.kind + "/" + req.direction, req.prm, req.first, req.end)
        ] += 1
        first, end = self._dates(req.kind, req.first, req.end)
        meter = self._meter(req.prm, req.kind, req.direction, first)
        points = self._points(meter, req.kind, req.direction, first, end)
        return self._v2_body(req, points) if req.api == "v2" else self._v5_body(req, points)

    def _answer(self, request: web.Request, req: _Request, conso: bool) -> web.Response:
        gate = self._gateway(request, conso)
        if isinstance(gate, web.Response):
            return gate
        fault = self._fault()
        if fault is not None:
            self.status_counts[fault.status] += 1
            return fault
        try:
            body = self._serve(req)
        except _Refused as exc:
            self.status_counts[exc.status] += 1
            if conso:
                return self._json(
                    exc.status,
                    {"status": exc.status, "message": exc.description, "error": exc.code},
                )
            return self._json(exc.status, {"error": exc.code, "error_description": exc.description})
        self.status_counts[200] += 1
        if conso and req.api == "v5":
            return self._json(200, body)
        return self._json(200, body if req.api == "v2" else {"meter_reading": body})

    async def _v2(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return self._v2_like(request, name, conso=False)

    def _v2_like(self, request: web.Request, name: str, conso: bool) -> web.Response:
        if name not in V2:
            return self._json(404, {"error": "not_found", "error_description": "unknown resource"})
        kind, direction = V2[name]
        q = request.query
        if kind == "max_power" and (
            q.get("mesuresPas") != "P1D" or q.get("grandeurPhysique") != "PMA"
        ):
            gate = self._gateway(request, conso)
            if isinstance(gate, web.Response):
                return gate
            body = {
                "error": "invalid_request",
                "error_description": "mesuresPas=P1D and grandeurPhysique=PMA are required",
            }
            if conso:
                body = {
                    "status": 400,
                    "message": body["error_description"],
                    "error": "invalid_request",
                }
            return self._json(400, body)
        req = _Request(
            "v2",
            kind,
            direction,
            q.get("pointId", ""),
            q.get("dateDebut", ""),
            q.get("dateFin", ""),
        )
        return self._answer(request, req, conso)

    async def _conso(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in CONSO_V5:
            kind, direction = CONSO_V5[name]
            q = request.query
            req = _Request(
                "v5", kind, direction, q.get("prm", ""), q.get("start", ""), q.get("end", "")
            )
            return self._answer(request, req, conso=True)
        return self._v2_like(request, name, conso=True)

    async def _v5(self, request: web.Request) -> web.Response:
        key = (request.match_info["api"], request.match_info["name"])
        if key not in V5:
            return self._json(404, {"error": "not_found", "error_description": "unknown resource"})
        kind, direction = V5[key]
        q = request.query
        req = _Request(
            "v5", kind, direction, q.get("usage_point_id", ""), q.get("start", ""), q.get("end", "")
        )
        return self._answer(request, req, conso=False)

    async def _contracts(self, request: web.Request) -> web.Response:
        gate = self._gateway(request, conso=False)
        if isinstance(gate, web.Response):
            return gate
        prm = request.query.get("usage_point_id", "")
        meter = self.meters.get(prm)
        if meter is None or meter.revoked:
            status, code, text = self._named("ADAM-DC-0008")
            return self._json(status, {"error": code, "error_description": text})
        contract = {
            "segment": "C5",
            "subscribed_power": f"{meter.subscribed_kva:g} kVA",
            "last_activation_date": f"{meter.activation.isoformat()}+01:00",
            "distribution_tariff": "BTINFCUST",
            "offpeak_hours": "HC (22H00-6H00)",
            "contract_status": "SERVC",
        }
        usage_point = {"usage_point_id": prm, "usage_point_status": "com", "meter_type": "AMM"}
        body = {
            "customer": {
                "customer_id": "-" + prm[-6:],
                "usage_points": [{"usage_point": usage_point, "contracts": contract}],
            }
        }
        return self._json(200, body)


def _main() -> None:
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description="Enedis Data Connect / Conso API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()

    async def serve() -> None:
        sim = EnedisSimulator()
        async with sim.running(args.host, args.port) as url:
            print(
                json.dumps(
                    {"url": url, "clients": sim.clients, "conso_tokens": sorted(sim.conso_tokens)}
                )
            )
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    _main()
