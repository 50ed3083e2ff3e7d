"""The daemon end to end with a test source: --once, checkpoints, sinks, failures."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_once, stored_points


async def test_once_writes_every_point_and_resumes_from_checkpoint(state_dir: Path) -> None:
    """--once stores each emitted point once; a second run continues after the checkpoint."""
    assert await run_once(state_dir, {"counter": {"per_run": 25}}) == 0
    assert await run_once(state_dir, {"counter": {"per_run": 25}}) == 0
    values = sorted(p.fields["n"] for p in await stored_points(state_dir, "counter"))
    assert values == list(range(50))


async def test_once_exits_non_zero_when_a_job_fails(state_dir: Path) -> None:
    """A failing job makes --once exit 1 without taking the pipeline down."""
    assert await run_once(state_dir, {"counter": {"fail": True}}) == 1
    internal = await stored_points(state_dir, "chargeflux_internal")
    errors = {p.tags["component"]: p.fields["errors"] for p in internal}
    assert errors["counter"] == 1


async def test_once_into_real_influxdb(state_dir: Path, influxdb) -> None:
    """Points reach a real InfluxDB 1.x through the /write sink, once each."""
    code = await run_once(state_dir, {"counter": {"per_run": 1234}}, sink=influxdb.sink_config())
    assert code == 0
    rows = influxdb.query('SELECT count("n") FROM "counter"')
    assert rows[0]["count"] == 1234
