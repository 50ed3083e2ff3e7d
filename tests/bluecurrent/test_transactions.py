"""Transactions → charging sessions over the REST simulator: paging, quirks, exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from collectors.bluecurrent.collector import SOURCE
from collectors.bluecurrent.models import Transaction
from collectors.bluecurrent.rest import RestClient
from daemon.errors import DataError, UpstreamError
from daemon.points import Point
from tests.bluecurrent.support import Engine, FakeClock, config_for

SITES = {
    "sites": {"BCU100000": {"station": "FRBCUP0001", "max_power_kw": 11.0}},
    "default_site": {"operational_unit": "FRBCU", "siren": "732829320"},
}


def sessions(points: list[Point]) -> list[Point]:
    return [p for p in points if p.measurement == "charging_session"]


def completed_ids(sim: Any) -> set[str]:
    return {
        str(tx["transaction_id"])
        for rows in sim.data.transactions.values()
        for tx in rows
        if tx["end_time"]
    }


async def test_every_completed_transaction_becomes_one_session(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """All pages are followed; each completed transaction is stored once, running ones not."""
    async with simulator(charge_points=2, transactions=30) as sim:
        collector = engine.collector(config_for(sim, **SITES), clock)
        await collector.poll_transactions()
        stored = sessions(await engine.points())
        pages = Counter(c for c in sim.commands if c.startswith("REST"))
    assert {p.fields["session_id"] for p in stored} == completed_ids(sim)
    assert len(stored) == 60
    assert pages["REST gettransactions"] == 4, "31 rows per charge point: two pages each"


async def test_session_values_tags_and_string_fields(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A transaction's string kWh, Amsterdam dates and site config land in its session point."""
    async with simulator(charge_points=2, transactions=4) as sim:
        collector = engine.collector(config_for(sim, **SITES), clock)
        await collector.poll_transactions()
        stored = {p.fields["session_id"]: p for p in sessions(await engine.points())}
    first = stored["10000000"]  # kwh "5.00" (a string), 01-03-2026 08:00 → 10:15 Amsterdam
    assert first.tags == {
        "source": SOURCE, "operational_unit": "FRBCU", "station": "FRBCUP0001",
        "pdc": "BCU100000", "siren": "732829320",
    }  # fmt: skip
    assert first.fields["energy_kwh"] == 5.0
    assert first.fields["duration_s"] == 3600.0
    assert first.fields["max_power_kw"] == 11.0
    start_ns = int(datetime(2026, 3, 1, 7, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert start_ns <= first.time_ns < start_ns + 1_000_000_000
    other = stored["10010001"]  # second charge point: station defaults to the EVSE id
    assert other.tags["station"] == "BCU100001" and other.fields["max_power_kw"] == 22.0
    assert other.fields["energy_kwh"] == 6.5


async def test_polls_store_only_new_and_late_transactions(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A second poll stores nothing and reads one page; a new and a late one are stored once."""
    async with simulator(charge_points=1, transactions=60) as sim:
        collector = engine.collector(config_for(sim), clock)
        await collector.poll_transactions()
        assert len(sessions(await engine.points())) == 60
        before = len(sim.commands)
        await collector.poll_transactions()
        assert len(sessions(await engine.points())) == 60
        assert sim.commands[before:] == ["REST gettransactions"], "stops at the known ones"
        newest = sim.data.add_transaction("BCU100000")
        late = sim.data.add_transaction("BCU100000", start=datetime(2026, 3, 15, 9, 0))
        await collector.poll_transactions()
        await collector.poll_transactions()
        stored = Counter(p.fields["session_id"] for p in sessions(await engine.points()))
        mark = await engine.ctx.checkpoints.get("transactions.BCU100000")
    assert len(stored) == 62 and max(stored.values()) == 1
    assert stored[str(newest["transaction_id"])] == 1 and stored[str(late["transaction_id"])] == 1
    assert str(newest["transaction_id"]) in mark["seen"]
    assert mark["newest"] == Transaction.model_validate(newest).end_time.isoformat()  # type: ignore[union-attr]


async def test_expired_token_logs_in_again_for_rest(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A 401 from the REST API drops the session token, logs in again and retries once."""
    async with simulator(charge_points=1, transactions=3) as sim:
        collector = engine.collector(config_for(sim), clock)
        await collector.auth.ensure()
        sim.expire_tokens()
        await collector.poll_transactions()
        assert sim.logins == 2
        assert len(sessions(await engine.points())) == 3


async def test_throttled_rest_call_is_retried_after_retry_after(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A 429 with Retry-After is retried (counted in retries), then succeeds."""
    async with simulator(charge_points=1, transactions=3) as sim:
        collector = engine.collector(config_for(sim, evse_ids=["BCU100000"]), clock)
        await collector.auth.ensure()
        sim.throttle_rest, sim.throttle_retry_after = 1, 0
        await collector.poll_transactions()
    assert engine.counters["retries"] == 1
    assert len(sessions(await engine.points())) == 3


async def test_server_down_is_an_upstream_error(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A refused REST connection raises UpstreamError (the job fails, nothing is stored)."""
    async with simulator(charge_points=1) as sim:
        collector = engine.collector(config_for(sim), clock)
        rest = RestClient(
            engine.ctx.http, "http://127.0.0.1:9/api", collector.auth, engine.counters, attempts=1
        )
        with pytest.raises(UpstreamError):
            await rest.transactions("BCU100000")
    assert engine.outbox.depth == 0


async def test_unreadable_rest_answers_are_data_errors(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """Malformed JSON or wrong types from the REST API raise DataError, never a crash."""

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="{not json", content_type="application/json")

    async def wrong(request: web.Request) -> web.Response:
        return web.json_response({"data": {"current_page": "one", "transactions": 3}})

    app = web.Application()
    app.router.add_post("/garbage/gettransactions", garbage)
    app.router.add_post("/wrong/gettransactions", wrong)
    async with simulator(charge_points=1) as sim, TestServer(app) as server:
        collector = engine.collector(config_for(sim), clock)
        for path in ("/garbage", "/wrong"):
            rest = RestClient(
                engine.ctx.http, str(server.make_url(path)), collector.auth, engine.counters
            )
            with pytest.raises(DataError):
                await rest.transactions("BCU100000")


async def test_simulator_rest_rejects_bad_requests(engine: Engine, simulator: Any) -> None:
    """The REST simulator refuses missing auth, a missing page, bad sorting and a bad body."""
    async with simulator(charge_points=1) as sim:
        http = engine.ctx.http
        url = f"{sim.api_url}/gettransactions"
        body = {"chargepoints": [{"chargepoint_id": "BCU100000"}]}
        good = {"page": "1", "sort_field": "stoppedtimestamp", "sort_field_order": "DESC"}
        async with http.post(url, params=good, json=body) as response:
            assert response.status == 401
        sim.tokens.add("t")
        auth = {"Authorization": "Token t"}
        cases = [
            ({**good, "page": "0"}, body, 400),
            ({k: v for k, v in good.items() if k != "page"}, body, 400),
            ({**good, "sort_field_order": "UP"}, body, 400),
            (good, {"chargepoints": "BCU100000"}, 400),
            ({**good, "page": "9"}, body, 404),
            (good, body, 200),
        ]
        for params, payload, status in cases:
            async with http.post(url, params=params, json=payload, headers=auth) as response:
                assert response.status == status, (params, payload)
