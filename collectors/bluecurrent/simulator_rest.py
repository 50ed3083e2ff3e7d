"""The REST half of the BlueCurrent simulator (aiohttp), under `/app/bc_api/api/v2.0`.

Every call needs `Authorization: Token <session token from the websocket login>` (401
`{"detail": "Invalid token."}` otherwise). `POST /gettransactions` requires `page` (from 1),
`sort_field` and `sort_field_order` (ASC/DESC) and a body
`{"chargepoints": [{"chargepoint_id": ...}]}`; it pages 25 transactions at a time,
`next_page` null on the last page, 404 past it. `throttle_rest` answers the next calls
with 429 and a Retry-After header.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from collectors.bluecurrent.simulator import BlueCurrentSimulator

__all__ = ["PER_PAGE", "rest_app"]

PER_PAGE = 25
_SORT_FIELDS = frozenset({"stoppedtimestamp", "startedtimestamp"})


def _fail(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def rest_app(sim: BlueCurrentSimulator) -> web.Application:
    """The aiohttp application serving the simulator's REST API."""

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if sim.throttle_rest > 0:
            sim.throttle_rest -= 1
            return web.json_response(
                {"detail": "Request was throttled."},
                status=429,
                headers={"Retry-After": str(sim.throttle_retry_after)},
            )
        if not sim.authorized(request.headers.get("Authorization")):
            return _fail(401, "Invalid token.")
        sim.commands.append(f"REST {request.path.rsplit('/', 1)[-1]}")
        return await handler(request)

    async def transactions(request: web.Request) -> web.Response:
        query = request.query
        try:
            page = int(query["page"])
        except (KeyError, ValueError):
            return _fail(400, "page is required and must be an integer")
        if page < 1:
            return _fail(400, "page starts at 1")
        if query.get("sort_field") not in _SORT_FIELDS:
            return _fail(400, "sort_field must be one of " + ", ".join(sorted(_SORT_FIELDS)))
        order = query.get("sort_field_order")
        if order not in ("ASC", "DESC"):
            return _fail(400, "sort_field_order must be ASC or DESC")
        try:
            body = json.loads(await request.text())
            wanted = [str(item["chargepoint_id"]) for item in body["chargepoints"]]
        except (ValueError, KeyError, TypeError):
            return _fail(400, 'body must be {"chargepoints": [{"chargepoint_id": ...}]}')
        unknown = [evse for evse in wanted if evse not in sim.data.counters]
        if unknown or not wanted:
            return _fail(400, f"unknown charge points: {unknown}")
        rows = sim.data.sorted_transactions(wanted, newest_first=order == "DESC")
        total_pages = (len(rows) + PER_PAGE - 1) // PER_PAGE
        if page > max(total_pages, 1):
            return _fail(404, "Invalid page.")
        chunk = rows[(page - 1) * PER_PAGE : page * PER_PAGE]
        data = {
            "current_page": page,
            "next_page": page + 1 if page < total_pages else None,
            "max_per_page": PER_PAGE,
            "total_pages": total_pages,
            "total_transactions": len(rows),
            "transactions": chunk,
        }
        return web.json_response({"data": data})

    async def status(request: web.Request) -> web.Response:
        evse_id = request.query.get("evse_id")
        if not evse_id:
            return _fail(400, "evse_id is required")
        if evse_id not in sim.data.counters:
            return _fail(404, "Not found.")
        return web.json_response({"data": sim.data.status_data(evse_id)})

    async def contracts(request: web.Request) -> web.Response:
        contract = {
            "contract_id": "BCU12345678",
            "contact_email": "ops@example.org",
            "subscription_type": "BASIS",
            "beneficiary_name": "Simulated Operator",
            "iban_beneficiary": "NL00SIMU0123456789",
        }
        return web.json_response({"contracts": [contract]})

    async def grids(request: web.Request) -> web.Response:
        address = {"street": "Europalaan", "housenumber": "100", "postal_code": "3526KS"}
        address.update(city="Utrecht", country="NL", region="")
        grids = [
            {"id": f"GRID-{evse}", "smart_charging": True, "address": address}
            for evse in sim.data.evse_ids
        ]
        return web.json_response({"grids": grids})

    app = web.Application(middlewares=[guard])
    base = "/app/bc_api/api/v2.0"
    app.router.add_post(f"{base}/gettransactions", transactions)
    app.router.add_get(f"{base}/chargepointstatus", status)
    app.router.add_get(f"{base}/getcontracts", contracts)
    app.router.add_get(f"{base}/getgrids", grids)
    return app
