"""A two-year backfill through the real pipeline into a real InfluxDB 1.x."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import pytest
import structlog

from collectors.enedis.collector import EnedisCollector
from collectors.enedis.plan import start_bound
from collectors.enedis.quota import SimulatedClock
from collectors.enedis.sim_data import power
from collectors.enedis.simulator import EnedisSimulator
from daemon.collector import CollectorContext
from daemon.pipeline import Pipeline
from daemon.points import to_ns
from tests.enedis.harness import NOW, config
from tests.helpers import make_config

PRM = "22516914714270"
pytestmark = pytest.mark.services


def _ns(text: str) -> int:
    return to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))


async def test_two_year_backfill_lands_in_influxdb(influxdb: object, tmp_path: Path) -> None:
    """Every interval of 24 months is stored once in InfluxDB, right on both 2025 DST days."""
    clock = SimulatedClock(NOW)
    simulator = EnedisSimulator(clock)
    pipeline = Pipeline(make_config(tmp_path, {}, influxdb.sink_config()))  # type: ignore[attr-defined]
    await pipeline.start()
    async with simulator.running() as url, aiohttp.ClientSession() as http:
        ctx = CollectorContext(
            name="enedis",
            emit=pipeline.emitter_for("enedis"),
            checkpoints=pipeline.checkpoints_for("enedis"),
            http=http,
            counters=pipeline.metrics.component("enedis"),
            log=structlog.get_logger("test"),
            state_dir=tmp_path,
        )
        cfg = config(url, [{"prm": PRM, "max_power": False}], offpeak_hours=["22:00-06:00"])
        await EnedisCollector(cfg, ctx, clock=clock).sync()
    assert await pipeline.close(drain_timeout=60)

    today = date(2026, 10, 20)
    days = (today - start_bound("load_curve", today, history_months=36)).days
    curve_requests = [k for k in simulator.window_requests if k[1].startswith("load_curve")]
    assert len(curve_requests) == math.ceil(days / 7)
    query = influxdb.query  # type: ignore[attr-defined]
    (row,) = query(f"SELECT count(power_w) FROM enedis_load_curve WHERE prm='{PRM}'")
    assert row["count"] == days * 48
    rows = query(
        "SELECT power_w, energy_wh, interval_s, period FROM enedis_load_curve "
        "WHERE time >= '2025-10-25T22:00:00Z' AND time < '2025-10-26T23:00:00Z'"
    )
    assert len(rows) == 50
    repeated = [r for r in rows if _ns("2025-10-26T00:00") <= r["time"] < _ns("2025-10-26T02:00")]
    assert [r["time"] for r in repeated] == [
        _ns(t)
        for t in ("2025-10-26T00:00", "2025-10-26T00:30", "2025-10-26T01:00", "2025-10-26T01:30")
    ]
    meter = simulator.meters[PRM]
    for r in repeated:
        start = datetime.fromtimestamp(r["time"] / 1e9, UTC)
        assert r["power_w"] == power(meter, "consumption", start)
        assert r["energy_wh"] == r["power_w"] / 2 and r["interval_s"] == 1800
        assert r["period"] == "HC"
    spring = query(
        "SELECT power_w FROM enedis_load_curve "
        "WHERE time >= '2025-03-29T23:00:00Z' AND time < '2025-03-30T22:00:00Z'"
    )
    assert len(spring) == 46
    assert spring[3]["time"] == _ns("2025-03-30T00:30")
    assert spring[4]["time"] == _ns("2025-03-30T01:00")
    daily = query("SELECT energy_wh FROM enedis_daily WHERE time = '2025-10-25T22:00:00Z'")
    assert daily and daily[0]["energy_wh"] == pytest.approx(
        sum(r["energy_wh"] for r in rows), abs=1
    )
