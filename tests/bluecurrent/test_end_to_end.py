"""The BlueCurrent source through the real daemon (`run --once`, demo hook, InfluxDB)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectors.bluecurrent import PLUGIN
from collectors.bluecurrent.config import BlueCurrentConfig
from collectors.bluecurrent.demo import DEMO_SIREN
from daemon.collector import DemoEnv
from daemon.registry import plugin
from tests.helpers import run_once, stored_points


def test_registry_finds_the_plugin() -> None:
    """The engine's registry resolves "bluecurrent" to this package's plugin."""
    found = plugin("bluecurrent")
    assert found is PLUGIN and found.config_model is BlueCurrentConfig
    assert found.demo is not None and found.add_cli is not None


async def test_demo_block_drives_run_once(state_dir: Path, tmp_path: Path) -> None:
    """The demo hook's block validates; `run --once` stores a snapshot and the sessions."""
    async with aiohttp.ClientSession() as http:
        env = DemoEnv(tmp_path, http, {"bluecurrent": {"charge_points": 3, "push_total": 0}})
        async with PLUGIN.demo(env) as block:  # type: ignore[misc]
            BlueCurrentConfig.model_validate(block)
            code = await run_once(state_dir, {"bluecurrent": block})
    assert code == 0
    statuses = await stored_points(state_dir, "bluecurrent_status")
    grids = await stored_points(state_dir, "bluecurrent_grid")
    sessions = await stored_points(state_dir, "charging_session")
    assert Counter(p.tags["evse_id"] for p in statuses) == Counter(
        {"BCU100000": 1, "BCU100001": 1, "BCU100002": 1}
    )
    assert len(grids) == 3
    assert len(sessions) == 90
    assert {p.tags["siren"] for p in sessions} == {DEMO_SIREN}
    assert {p.tags["station"] for p in sessions} == {
        "FRBCUPBCU100000", "FRBCUPBCU100001", "FRBCUPBCU100002"
    }  # fmt: skip


async def test_streaming_run_stores_pushed_statuses(
    state_dir: Path, tmp_path: Path, simulator: Any
) -> None:
    """With streams running, pushed statuses reach the store; the snapshot job stands aside."""
    async with simulator(charge_points=4, push_total=200, push_rate=2000) as sim:
        block = {"api_token": sim.options.api_token, "ws_url": sim.ws_url,
                 "api_url": sim.api_url}  # fmt: skip
        code = await run_once(state_dir, {"bluecurrent": block}, stream_for=1.5)
        sent = len(sim.sent)
    assert code == 0
    stored = len(await stored_points(state_dir, "bluecurrent_status"))
    stored += len(await stored_points(state_dir, "bluecurrent_grid"))
    assert sent >= 200 and stored == sent
    assert sim.commands.count("GET_CHARGE_POINTS") == 1, "snapshot did not open a second session"


async def test_invalid_token_fails_the_run_but_not_the_daemon(
    state_dir: Path, simulator: Any
) -> None:
    """`run --once` with a refused token exits non-zero after finishing cleanly."""
    async with simulator() as sim:
        block = {"api_token": "wrong", "ws_url": sim.ws_url, "api_url": sim.api_url}
        code = await run_once(state_dir, {"bluecurrent": block}, stream_for=0.5)
    assert code == 1
    assert await stored_points(state_dir, "bluecurrent_status") == []


@pytest.mark.services
async def test_pushed_statuses_land_in_influxdb_once(
    influxdb: Any, state_dir: Path, simulator: Any
) -> None:
    """Every status pushed over the websocket is one InfluxDB point with its values."""
    async with simulator(charge_points=5, push_total=500, push_rate=5000, grid_every=0) as sim:
        block = {"api_token": sim.options.api_token, "ws_url": sim.ws_url,
                 "api_url": sim.api_url}  # fmt: skip
        code = await run_once(
            state_dir, {"bluecurrent": block}, influxdb.sink_config(), stream_for=1.5
        )
        sent = [m for m in sim.sent if m["object"] == "CH_STATUS"]
    assert code == 0
    rows = influxdb.query("SELECT count(energy_kwh) FROM bluecurrent_status GROUP BY evse_id")
    assert {row["evse_id"]: row["count"] for row in rows} == Counter(m["evse_id"] for m in sent)
    (total,) = influxdb.query("SELECT count(energy_kwh) FROM bluecurrent_status")
    assert total["count"] == len(sent) >= 500
    last = sent[-1]
    (row,) = influxdb.query(
        "SELECT last(energy_kwh) AS kwh, last(voltage_v1) AS v1, last(vehicle_status) AS vs "
        f"FROM bluecurrent_status WHERE evse_id = '{last['evse_id']}'"
    )
    assert row["kwh"] == last["data"]["actual_kwh"] and row["v1"] == last["data"]["actual_v1"]
    assert row["vs"] == last["data"]["vehicle_status"]
