"""The request/response client and the websocket simulator's strictness."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from collectors.bluecurrent.client import (
    AlreadyConnected,
    BlueCurrentApi,
    CommandRejected,
    InvalidToken,
    RequestLimitReached,
)
from tests.bluecurrent.support import Engine, FakeClock, config_for


async def test_pybluecurrent_methods_answer_typed_models(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """Account, cards, charge points, settings, grid, sustainability, and the REST calls."""
    async with simulator(charge_points=2) as sim:
        collector = engine.collector(config_for(sim), clock)
        async with BlueCurrentApi(collector.auth, sim.ws_url, collector.rest) as api:
            account = await api.get_account()
            cards = await api.get_charge_cards()
            points = await api.get_charge_points()
            settings = await api.get_charge_point_settings("BCU100001")
            grid = await api.get_grid_status("BCU100001")
            green = await api.get_sustainability_status()
            status = await api.get_status("BCU100000")
        contracts = await collector.rest.contracts()
        grids = await collector.rest.grids()
        rest_status = await collector.rest.charge_point_status("BCU100001")
    assert account.login == "ops@example.org"
    assert cards[0].uid == "A1B2C3D4E5F6" and cards[0].date_created is not None
    assert [p.evse_id for p in points] == ["BCU100000", "BCU100001"]
    assert settings.evse_id == "BCU100001"
    assert grid["id"] == "GRID-BCU100001" and grid["grid_max_install"] == 40.0
    assert green.trees == 3 and green.co2 == 123.45
    assert status["evse_id"] == "BCU100000"
    assert contracts[0].contract_id == "BCU12345678"
    assert [g.id for g in grids] == ["GRID-BCU100000", "GRID-BCU100001"]
    assert rest_status.start_datetime is not None and rest_status.stop_datetime is not None
    assert sim.logins == 1


async def test_unknown_command_is_error_0(engine: Engine, clock: FakeClock, simulator: Any) -> None:
    """An unknown command is answered with ERROR 0, raised as CommandRejected."""
    async with simulator() as sim:
        collector = engine.collector(config_for(sim), clock)
        async with BlueCurrentApi(collector.auth, sim.ws_url) as api:
            with pytest.raises(CommandRejected) as caught:
                await api.request("GET_EVERYTHING", "EVERYTHING")
    assert caught.value.code == 0


async def test_wrong_api_token_is_invalid(engine: Engine, clock: FakeClock, simulator: Any) -> None:
    """STATUS_API_TOKEN with success false is InvalidToken, remembered without a new login."""
    async with simulator() as sim:
        collector = engine.collector(config_for(sim, api_token="nope"), clock)
        for _ in range(2):
            with pytest.raises(InvalidToken):
                await collector.auth.ensure()
    assert sim.logins == 1


async def test_login_over_the_request_limit(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """ERROR 42 at login is RequestLimitReached (a QuotaError), not an invalid token."""
    async with simulator(request_limit=0) as sim:
        collector = engine.collector(config_for(sim), clock)
        with pytest.raises(RequestLimitReached):
            await collector.auth.ensure()
        assert collector.auth.invalid is None


async def test_second_connection_rejected_as_already_connected(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A handshake refused with "Already connected" maps to AlreadyConnected."""
    async with simulator(max_connections=1) as sim:
        collector = engine.collector(config_for(sim), clock)
        await collector.auth.ensure()
        async with BlueCurrentApi(collector.auth, sim.ws_url):
            with pytest.raises(AlreadyConnected):
                async with BlueCurrentApi(collector.auth, sim.ws_url):
                    pass
    assert sim.handshakes_rejected == 1


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ({"command": "GET_CHARGE_POINTS"}, 2),
        ({"command": "GET_CHARGE_POINTS", "Authorization": "Token forged"}, 1),
        ({"command": "GET_CH_STATUS", "Authorization": "Token {token}"}, 9),
        ({"command": "GET_CH_STATUS", "evse_id": "BCU999", "Authorization": "Token {token}"}, 2),
        ({"command": "DANCE", "Authorization": "Token {token}"}, 0),
        ("not json", 9),
    ],
)
async def test_simulator_refuses_malformed_commands(simulator: Any, frame: Any, error: int) -> None:
    """Missing or forged Authorization, missing or foreign evse_id, unknown commands and
    non-JSON frames get the ERROR the real service sends."""
    async with simulator() as sim, connect(sim.ws_url) as ws:
        await ws.send(json.dumps({"command": "VALIDATE_API_TOKEN", "token": "sim-api-token"}))
        token = json.loads(await ws.recv())["token"]
        text = frame if isinstance(frame, str) else json.dumps(frame).replace("{token}", token)
        await ws.send(text)
        answer = json.loads(await ws.recv())
    assert answer["object"] == "ERROR" and answer["error"] == error


async def test_simulator_serves_only_its_path(simulator: Any) -> None:
    """A handshake on another path than /haserver is refused."""
    async with simulator() as sim:
        with pytest.raises(Exception, match="404"):
            async with connect(sim.ws_url.replace("/haserver", "/appserver")):
                pass
