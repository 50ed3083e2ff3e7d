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
import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from collectors.enedis.quota import Clock, WallClock
from collectors.enedis.sim_data import PARIS, Meter, sandbox_meters
from collectors.enedis.sim_rules import (
    CONSO_V5,
    V2,
    V5,
    Refused,
    SimRequest,
    check_dates,
    check_meter,
    named,
    points,
    v2_body,
    v5_body,
)

__all__ = ["EnedisSimulator", "Fault"]


@dataclass
class Fault:
    """A canned answer served instead of the next data request."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


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
    def _serve(self, req: SimRequest) -> dict[str, Any]:
        self.window_requests[
            (req.api, req.kind + "/" + req.direction, req.prm, req.first, req.end)
        ] += 1
        first, end = check_dates(req.kind, req.first, req.end, self.today())
        meter = check_meter(self.meters, req.prm, req.kind, req.direction, first)
        values = points(meter, req.kind, req.direction, first, end)
        return v2_body(req, values) if req.api == "v2" else v5_body(req, values)

    def _answer(self, request: web.Request, req: SimRequest, conso: bool) -> web.Response:
        gate = self._gateway(request, conso)
        if isinstance(gate, web.Response):
            return gate
        fault = self._fault()
        if fault is not None:
            self.status_counts[fault.status] += 1
            return fault
        try:
            body = self._serve(req)
        except Refused as exc:
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
        req = SimRequest(
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
            req = SimRequest(
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
        req = SimRequest(
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
            status, code, text = named("ADAM-DC-0008")
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
