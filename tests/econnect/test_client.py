"""The Masterdata client against the simulator: paging, retries and failure paths."""

from __future__ import annotations

import aiohttp
import pytest

from collectors.econnect.client import MasterdataClient
from collectors.econnect.simulator import make_stations
from daemon.errors import AuthError, DataError, UpstreamError
from daemon.metrics import Counters
from tests.econnect.conftest import SimulatorFactory, config_for


async def test_every_page_fetched_exactly_once(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A 320-station fleet takes pages 0..3 plus the empty page 4, each requested once."""
    async with simulator_factory() as sim:
        pull = await MasterdataClient(http, config_for(sim)).pull()
    assert dict(sim.hits) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
    assert pull.pages == 4
    assert [s.id for s in pull.parsed.stations] == [s["id"] for s in make_stations()]


async def test_exact_multiple_of_page_size_stops_on_the_empty_page(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """200 stations in pages of 100 end with one request for the empty page 2, no more."""
    async with simulator_factory(stations=make_stations(200)) as sim:
        pull = await MasterdataClient(http, config_for(sim)).pull()
    assert dict(sim.hits) == {0: 1, 1: 1, 2: 1}
    assert len(pull.parsed.stations) == 200


async def test_empty_fleet_is_one_request(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A business partner without stations yields an empty pull after one request."""
    async with simulator_factory(stations=[]) as sim:
        pull = await MasterdataClient(http, config_for(sim)).pull()
    assert sim.requests == 1
    assert pull.parsed.stations == [] and pull.pages == 0


async def test_wrong_password_is_a_clear_auth_error_without_the_password(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A 401 raises AuthError naming the user and partner, never the password, not retried."""
    async with simulator_factory() as sim:
        config = config_for(sim, password="hunter2-wrong")
        with pytest.raises(AuthError) as caught:
            await MasterdataClient(http, config).pull()
    message = str(caught.value)
    assert "hunter2-wrong" not in message and "hunter2-wrong" not in repr(caught.value)
    assert "'demo'" in message and "100042" in message and "401" in message
    assert sim.rejected[401] == 1 and sim.requests == 1


async def test_foreign_business_partner_is_an_auth_error(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A 403 for a business partner the user may not read raises AuthError."""
    async with simulator_factory() as sim:
        with pytest.raises(AuthError, match="403"):
            await MasterdataClient(http, config_for(sim, business_partner="999")).pull()


async def test_transient_5xx_is_retried(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """Two 503 answers are retried and the pull completes with every page once."""
    counters = Counters("econnect")
    async with simulator_factory(failures=2) as sim:
        pull = await MasterdataClient(http, config_for(sim), counters=counters).pull()
    assert sim.rejected[503] == 2
    assert counters["retries"] == 2
    assert counters["requests"] == 7
    assert dict(sim.hits) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
    assert len(pull.parsed.stations) == 320


async def test_rate_limit_waits_for_retry_after(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A 429 with Retry-After is retried after the server's wait and the pull completes."""
    counters = Counters("econnect")
    async with simulator_factory(failures=1, failure_status=429, retry_after="0") as sim:
        pull = await MasterdataClient(http, config_for(sim), counters=counters).pull()
    assert sim.rejected[429] == 1 and counters["retries"] == 1
    assert len(pull.parsed.stations) == 320


async def test_persistent_5xx_gives_up_after_the_configured_attempts(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A source that keeps failing raises UpstreamError after `retries` attempts."""
    async with simulator_factory(failures=100, failure_status=500) as sim:
        with pytest.raises(UpstreamError, match="500"):
            await MasterdataClient(http, config_for(sim, retries=3)).pull()
    assert sim.rejected[500] == 3


async def test_malformed_json_is_a_data_error(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A page that is not JSON raises DataError naming the page, without retrying it."""
    async with simulator_factory(malformed_page=1) as sim:
        with pytest.raises(DataError, match=r"page 1: .*not JSON"):
            await MasterdataClient(http, config_for(sim)).pull()
    assert sim.hits[1] == 1


async def test_server_down_is_an_upstream_error(http: aiohttp.ClientSession) -> None:
    """A refused connection raises UpstreamError after the bounded retries."""
    from collectors.econnect.config import EconnectConfig

    config = EconnectConfig(
        base_url="http://127.0.0.1:9",
        business_partner="1",
        username="u",
        password="p",  # type: ignore[arg-type]
        retries=2,
        retry_max_wait_s=0.01,
    )
    counters = Counters("econnect")
    with pytest.raises(UpstreamError):
        await MasterdataClient(http, config, counters=counters).pull()
    assert counters["requests"] == 2


async def test_page_without_content_is_a_data_error(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """An answer without a `content` list is refused as DataError."""
    from aiohttp import web

    async with simulator_factory() as sim:

        async def broken(request: web.Request) -> web.Response:
            return web.json_response({"items": []})

        app = web.Application()
        app.router.add_get("/masterdata/cpos/{bp}/chargingstations", broken)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            config = config_for(sim, base_url=f"http://127.0.0.1:{port}")
            with pytest.raises(DataError, match="content"):
                await MasterdataClient(http, config).pull()
        finally:
            await runner.cleanup()


async def test_runaway_paging_is_bounded(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A source that never returns an empty page stops at `max_pages` with DataError."""
    async with simulator_factory() as sim:
        with pytest.raises(DataError, match="max_pages"):
            await MasterdataClient(http, config_for(sim, max_pages=2)).pull()
    assert dict(sim.hits) == {0: 1, 1: 1}


async def test_page_size_is_sent(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """A smaller configured page size is what the client asks for."""
    async with simulator_factory(stations=make_stations(25)) as sim:
        pull = await MasterdataClient(http, config_for(sim, page_size=10)).pull()
    assert pull.pages == 3 and dict(sim.hits) == {0: 1, 1: 1, 2: 1, 3: 1}
