"""`chargeflux run --once` with the eConnect source, then the report from its snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl

from collectors.econnect.cli import report_stations
from tests.econnect.conftest import SimulatorFactory
from tests.helpers import run_once, stored_points


async def test_run_once_stores_points_and_the_report_reads_the_snapshot(
    tmp_path: Path, simulator_factory: SimulatorFactory
) -> None:
    """The daemon stores one point per station and `report stations` needs no API call then."""
    state_dir = tmp_path / "state"
    async with simulator_factory(bad_records=2) as sim:
        block = {
            "base_url": sim.base_url,
            "business_partner": sim.business_partner,
            "username": sim.username,
            "password": sim.password,
        }
        assert await run_once(state_dir, {"econnect": block}) == 0
        requests_after_poll = sim.requests
    points = await stored_points(state_dir, "econnect_station")
    assert len(points) == 320 and len({p.time_ns for p in points}) == 1
    assert requests_after_poll == 5

    params = tmp_path / "params.json"
    params.write_text(json.dumps({"state_dir": str(state_dir)}), encoding="utf-8")
    path, snapshot = await report_stations(params, out=tmp_path / "fleet.xlsx")
    assert len(snapshot.parsed.stations) == 320 and len(snapshot.parsed.bad) == 2
    book = openpyxl.load_workbook(path, read_only=True)
    summary = dict(list(book["summary"].iter_rows(values_only=True))[1:])
    assert summary["stations"] == 320 and summary["bad records (skipped)"] == 2
