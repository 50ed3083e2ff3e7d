"""The eConnect collector end to end: simulator → points + checkpoint → snapshot."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from structlog.testing import capture_logs

from collectors.econnect import PLUGIN
from collectors.econnect.collector import MEASUREMENT
from collectors.econnect.simulator import make_stations
from collectors.econnect.snapshot import load_snapshot, snapshot_path
from daemon.collector import DemoEnv
from daemon.errors import AuthError
from daemon.points import to_ns
from tests.econnect.conftest import Harness, SimulatorFactory, config_for


async def test_poll_writes_one_point_per_station_at_one_poll_time(
    simulator_factory: SimulatorFactory, harness: Harness
) -> None:
    """Each valid station becomes an econnect_station point; all share the poll time."""
    async with simulator_factory() as sim:
        collector = PLUGIN.create(config_for(sim), harness.ctx)
        (job,) = collector.jobs()
        await job.run()
    points = await harness.committed()
    assert len(points) == 320
    assert {p.measurement for p in points} == {MEASUREMENT}
    assert len({p.time_ns for p in points}) == 1
    expected = {s["id"]: s for s in make_stations()}
    first = next(p for p in points if p.tags["station"] == "FR*CFX*E00000")
    source = expected["FR*CFX*E00000"]
    assert first.tags == {
        "station": "FR*CFX*E00000",
        "model": source["modelInfo"],
        "state": source["state"],
        "type": source["type"],
    }
    assert first.fields["count"] == 1
    assert source["installDate"].startswith(str(first.fields["install_date"])[:10])
    undated = [p for p in points if p.fields["install_date"] == ""]
    assert len(undated) == 4
    last = await harness.checkpoints.get("last_poll")
    assert last["stations"] == 320 and last["pages"] == 4 and last["date_problems"] == 1
    snapshot = load_snapshot(snapshot_path(harness.state_dir))
    assert to_ns(snapshot.polled_at) == points[0].time_ns
    assert [s.id for s in snapshot.parsed.stations] == list(expected)


async def test_bad_records_are_counted_logged_and_not_fatal(
    simulator_factory: SimulatorFactory, harness: Harness
) -> None:
    """Injected bad records are skipped, counted, logged once and kept in the snapshot."""
    async with simulator_factory(bad_records=5) as sim:
        collector = PLUGIN.create(config_for(sim), harness.ctx)
        with capture_logs() as logs:
            await collector.jobs()[0].run()
    assert len(await harness.committed()) == 320
    assert harness.counters["bad_records"] == 5
    warnings = [entry for entry in logs if entry["event"] == "econnect_bad_records"]
    assert len(warnings) == 1 and warnings[0]["count"] == 5
    assert (await harness.checkpoints.get("last_poll"))["bad_records"] == 5
    snapshot = load_snapshot(snapshot_path(harness.state_dir))
    assert len(snapshot.parsed.bad) == 5
    assert {bad.problem for bad in snapshot.parsed.bad} >= {"id: missing", "not an object (str)"}


async def test_refused_credentials_write_nothing(
    simulator_factory: SimulatorFactory, harness: Harness
) -> None:
    """An AuthError leaves no points, no checkpoint and no snapshot behind."""
    async with simulator_factory() as sim:
        collector = PLUGIN.create(config_for(sim, password="nope"), harness.ctx)
        with pytest.raises(AuthError):
            await collector.jobs()[0].run()
    assert await harness.committed() == []
    assert await harness.checkpoints.get("last_poll") is None
    assert not snapshot_path(harness.state_dir).exists()


async def test_next_poll_replaces_the_snapshot(
    simulator_factory: SimulatorFactory, harness: Harness
) -> None:
    """A later poll replaces the snapshot with the fleet as it is then."""
    async with simulator_factory(stations=make_stations(50)) as sim:
        collector = PLUGIN.create(config_for(sim), harness.ctx)
        await collector.jobs()[0].run()
        sim.stations = sim.stations[:20]
        await collector.jobs()[0].run()
    assert len(load_snapshot(snapshot_path(harness.state_dir)).parsed.stations) == 20
    assert len(await harness.committed()) == 70
    assert not list(harness.state_dir.glob(".econnect-*"))


def test_job_uses_the_configured_schedule(harness: Harness) -> None:
    """The single job runs on the configured cron schedule (weekly by default)."""
    config = PLUGIN.config_model.model_validate(
        {"business_partner": "1", "username": "u", "password": "p"}
    )
    (default,) = PLUGIN.create(config, harness.ctx).jobs()
    assert (default.cron, default.every, default.run_at_start) == ("17 6 * * 1", None, True)
    custom = config.model_copy(update={"schedule": "0 7 * * *", "poll_at_start": False})
    (job,) = PLUGIN.create(custom, harness.ctx).jobs()
    assert (job.cron, job.run_at_start, job.timezone) == ("0 7 * * *", False, "Europe/Paris")


async def test_demo_hook_yields_a_working_config(
    http: aiohttp.ClientSession, harness: Harness
) -> None:
    """The demo hook starts the simulator and its config block polls it successfully."""
    assert PLUGIN.demo is not None
    env = DemoEnv(harness.state_dir, http, {"econnect": {"failures": 0}})
    async with PLUGIN.demo(env) as block:
        config = PLUGIN.config_model.model_validate(block)
        await asyncio.wait_for(PLUGIN.create(config, harness.ctx).jobs()[0].run(), 10)
    assert len(await harness.committed()) == 320
    assert "password" in block and "demo-password" not in repr(config)
