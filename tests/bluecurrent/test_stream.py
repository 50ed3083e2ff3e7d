"""The live subscription over a real websocket to the simulator: exactly-once storage,
drops and backoff, malformed frames, invalid and expired tokens, the request limit."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from daemon.points import Point
from tests.bluecurrent.support import Engine, FakeClock, config_for


def expected(message: dict[str, Any]) -> tuple:
    """What the simulator's data message must become, computed independently of mapping.py."""
    if message["object"] == "CH_STATUS":
        data = message["data"]
        fields = {
            "voltage_v1": data["actual_v1"],
            "voltage_v2": data["actual_v2"],
            "voltage_v3": data["actual_v3"],
            "current_a1": data["actual_p1"],
            "current_a2": data["actual_p2"],
            "current_a3": data["actual_p3"],
            "energy_kwh": data["actual_kwh"],
            "max_usage_a": data["max_usage"],
            "smartcharging_max_usage_a": data["smartcharging_max_usage"],
            "max_offline_a": data["max_offline"],
            "total_cost_eur": data["total_cost"],
            "activity": data["activity"],
            "vehicle_status": data["vehicle_status"],
            "power_kw": sum(data[f"actual_v{i}"] * data[f"actual_p{i}"] for i in (1, 2, 3)) / 1000,
        }
        return ("bluecurrent_status", message["evse_id"], _key(fields))
    if message["object"] == "GRID_STATUS":
        data = message["data"]
        fields = {
            "current_a1": data["grid_actual_p1"],
            "current_a2": data["grid_actual_p2"],
            "current_a3": data["grid_actual_p3"],
            "max_install_a": data["grid_max_install"],
            "max_reserved_a": data["grid_max_reserved"],
        }
        return ("bluecurrent_grid", data["id"].removeprefix("GRID-"), _key(fields))
    fields = {f"current_a{i}": message[f"grid_actual_p{i}"] for i in (1, 2, 3)}
    return ("bluecurrent_grid", message["evse_id"], _key(fields))


def _key(fields: dict[str, Any]) -> tuple:
    return tuple(
        sorted(
            (name, round(float(value), 9) if not isinstance(value, str) else value)
            for name, value in fields.items()
        )
    )


def stored(points: list[Point]) -> Counter:
    return Counter((p.measurement, p.tags["evse_id"], _key(dict(p.fields))) for p in points)


async def settle(engine: Engine, sim: Any) -> None:
    """Wait until the simulator sent everything and the outbox holds one point per frame."""
    await engine.until(lambda: sim.settled() and engine.outbox.depth >= len(sim.sent))


async def test_every_pushed_status_is_stored_once_with_its_values(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """Each CH_STATUS / GRID_* frame sent becomes exactly one point with the mapped values."""
    async with simulator(charge_points=5, push_total=600) as sim:
        collector = engine.collector(config_for(sim), clock)
        engine.run(collector.stream())
        await settle(engine, sim)
        points = await engine.points()
    assert len(points) == len(sim.sent) >= 600 + 2 * 5
    assert stored(points) == Counter(expected(message) for message in sim.sent)
    series = Counter((p.measurement, p.tags["evse_id"], p.time_ns) for p in points)
    assert max(series.values()) == 1, "two points share a series and timestamp"
    assert engine.counters["malformed_frames"] == 0
    assert sim.logins == 1


async def test_status_point_has_every_field_with_units(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A status point carries every documented field, floats for numbers, strings for states."""
    async with simulator(charge_points=1) as sim:
        collector = engine.collector(config_for(sim), clock)
        engine.run(collector.stream())
        await engine.until(lambda: engine.outbox.depth >= 2)
        points = await engine.points()
    status = next(p for p in points if p.measurement == "bluecurrent_status")
    assert set(status.fields) == {
        "voltage_v1", "voltage_v2", "voltage_v3", "current_a1", "current_a2", "current_a3",
        "power_kw", "energy_kwh", "max_usage_a", "smartcharging_max_usage_a", "max_offline_a",
        "total_cost_eur", "activity", "vehicle_status",
    }  # fmt: skip
    for name, value in status.fields.items():
        assert isinstance(value, str if name in ("activity", "vehicle_status") else float), name
    grid = next(p for p in points if p.measurement == "bluecurrent_grid")
    assert grid.tags == {"evse_id": "BCU100000"}
    assert grid.fields["max_install_a"] == 40.0 and grid.fields["max_reserved_a"] == 25.0


async def test_drops_lose_nothing_and_follow_the_backoff_schedule(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """With the server dropping every 37 frames, every frame sent is stored once, the token
    is reused, and the reconnect delays follow the jittered 1 s → 60 s schedule."""
    async with simulator(charge_points=4, push_total=500, drop_every=37, drop_limit=11) as sim:
        collector = engine.collector(config_for(sim), clock)
        engine.run(collector.stream())
        await settle(engine, sim)
        points = await engine.points()
        reconnects, sleeps = engine.counters["reconnects"], list(clock.sleeps)
    assert sim.drops == 11 and sim.connections == 1 + 12, "one login connection, 12 sessions"
    assert stored(points) == Counter(expected(message) for message in sim.sent)
    assert sim.logins == 1, "a reconnect must reuse the session token"
    drops = sim.drops
    assert reconnects == drops
    assert len(sleeps) == drops
    for attempt, delay in enumerate(sleeps):
        ceiling = min(60.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
    assert max(sleeps) > 30.0, "the schedule reaches the 60 s cap"


async def test_close_frame_drops_lose_nothing(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """Drops by a close frame (code 1011) lose nothing either."""
    options = {"drop_every": 29, "drop_limit": 5, "drop_mode": "close_frame"}
    async with simulator(charge_points=3, push_total=300, **options) as sim:
        collector = engine.collector(config_for(sim), clock)
        engine.run(collector.stream())
        await settle(engine, sim)
        points = await engine.points()
    assert sim.drops == 5
    assert stored(points) == Counter(expected(message) for message in sim.sent)


async def test_connection_resets_never_duplicate(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """After TCP resets (a crashed server), what is stored was sent, and only once; frames in
    flight at a reset may be lost to TCP, which no client can prevent."""
    options = {"drop_every": 31, "drop_limit": 5, "drop_mode": "abort"}
    async with simulator(charge_points=3, push_total=300, **options) as sim:
        collector = engine.collector(config_for(sim), clock)
        engine.run(collector.stream())
        await engine.until(lambda: sim.settled() and collector.backoff.attempt == 5)
        await engine.until(lambda: engine.outbox.depth >= len(sim.sent) - 5 * 31)
        points = await engine.points()
        reconnects = engine.counters["reconnects"]
    assert not stored(points) - Counter(expected(message) for message in sim.sent)
    assert reconnects == 5


async def test_a_stable_minute_resets_the_backoff(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """After a connection that stayed up a minute, the next delay is back at 1 s."""
    async with simulator(charge_points=2, push_total=0, drop_every=3) as sim:
        collector = engine.collector(config_for(sim), clock)
        stable_after = collector.backoff.stable_after

        def on_sleep(seconds: float) -> None:
            if len(clock.sleeps) == 4:
                clock.on_sleep = None
                original = collector.backoff.connected

                def connected_then_wait() -> None:
                    original()
                    clock.advance(stable_after)

                collector.backoff.connected = connected_then_wait  # type: ignore[method-assign]

        clock.on_sleep = on_sleep
        engine.run(collector.stream())
        await engine.until(lambda: len(clock.sleeps) >= 6)
    assert clock.sleeps[3] >= 4.0
    assert clock.sleeps[4] <= 1.0


async def test_malformed_frames_are_counted_and_skipped(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """Garbage of every kind is counted and logged with a sample; the data around it is kept."""
    async with simulator(charge_points=3, push_total=300, garbage_every=10) as sim:
        collector = engine.collector(config_for(sim), clock)
        with structlog.testing.capture_logs() as logs:
            engine.run(collector.stream())
            await settle(engine, sim)
            await engine.until(lambda: engine.counters["malformed_frames"] == sim.garbage_sent)
        points = await engine.points()
    assert sim.garbage_sent >= 30
    assert engine.counters["malformed_frames"] == sim.garbage_sent
    assert stored(points) == Counter(expected(message) for message in sim.sent)
    kinds = {e["kind"] for e in logs if e["event"] == "bluecurrent_malformed_frame"}
    assert kinds == {"not_json", "not_an_object", "no_object", "unknown_object", "bad_fields"}
    sample = next(e for e in logs if e.get("kind") == "bad_fields")
    assert "actual_v1" in sample["reason"] and sample["sample"].startswith("{")
    assert sim.connections == 2, "login, then one session: a bad frame must not cost it"


async def test_invalid_token_stops_the_collector_only(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A refused API token ends stream() without raising; later jobs fail fast, no new login."""
    async with simulator(api_token="the-right-one") as sim:
        collector = engine.collector(config_for(sim, api_token="a-wrong-one"), clock)
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(10):
                await collector.stream()
        assert any(e["event"] == "bluecurrent_invalid_token" for e in logs)
        assert engine.counters["errors"] >= 1
        with pytest.raises(Exception, match="refused the API token"):
            await collector.poll_transactions()
        assert sim.logins == 1
    await engine.ctx.emit.points([Point("probe", {}, {"ok": 1.0}, 1)])
    assert engine.outbox.depth == 1, "the engine keeps working"


async def test_expired_session_token_logs_in_again(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """ERROR 1 on a running subscription drops the session token, logs in again, goes on."""
    async with simulator(charge_points=2) as sim:
        collector = engine.collector(config_for(sim), clock)
        engine.run(collector.stream())
        await engine.until(lambda: engine.outbox.depth >= 4)
        sim.expire_tokens()
        for link in list(sim._links):
            await link.ws.close()
        await engine.until(lambda: sim.logins == 2 and engine.outbox.depth >= 8)
    assert collector.auth.token == "sim-session-0002"


@pytest.mark.parametrize(
    ("now", "wait"),
    [
        (datetime(2026, 6, 15, 10, 0, tzinfo=UTC), 12 * 3600 + 30),  # CEST: 22:00:30 UTC
        (datetime(2026, 3, 29, 12, 0, tzinfo=UTC), 10 * 3600 + 30),  # after spring forward
        (datetime(2026, 10, 25, 12, 0, tzinfo=UTC), 11 * 3600 + 30),  # after fall back
    ],
)
async def test_request_limit_waits_until_the_amsterdam_reset(
    engine: Engine, simulator: Any, now: datetime, wait: float
) -> None:
    """ERROR 42 / close 4001, then rejected handshakes: the collector sleeps until 00:00:30
    Europe/Amsterdam (DST-correct), then reconnects and stores statuses again."""
    clock = FakeClock(now)
    async with simulator(charge_points=2, request_limit=6) as sim:
        collector = engine.collector(config_for(sim), clock)

        def on_sleep(seconds: float) -> None:
            if seconds > 3600:
                sim.reset_request_limit()

        clock.on_sleep = on_sleep
        engine.run(collector.stream())
        await engine.until(lambda: sim.limited or bool(clock.sleeps))
        await engine.until(lambda: bool(clock.sleeps) and engine.outbox.depth >= 6)
    assert clock.sleeps[0] == pytest.approx(wait)
    assert "GET_GRID_STATUS" in sim.commands


async def test_rejected_handshake_waits_for_the_reset(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """A handshake refused with x-websocket-reject-reason "Request limit reached" waits for
    the reset instead of hammering the server."""
    async with simulator(charge_points=1) as sim:
        collector = engine.collector(config_for(sim), clock)
        await collector.auth.ensure()
        sim.limited = True
        clock.on_sleep = lambda seconds: sim.reset_request_limit()
        engine.run(collector.stream())
        await engine.until(lambda: engine.outbox.depth >= 2)
    assert sim.handshakes_rejected == 1
    assert clock.sleeps[0] == pytest.approx(12 * 3600 + 30)


async def test_snapshot_reads_every_charge_point_once_and_disconnects(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """The --once snapshot stores one status and one grid point per charge point and returns."""
    async with simulator(charge_points=6) as sim:
        collector = engine.collector(config_for(sim), clock)
        async with asyncio.timeout(10):
            await collector.snapshot()
        points = await engine.points()
        await asyncio.sleep(0)
    measured = Counter(p.measurement for p in points)
    assert measured == {"bluecurrent_status": 6, "bluecurrent_grid": 6}
    assert {p.tags["evse_id"] for p in points} == set(sim.data.evse_ids)


async def test_close_waits_for_uncommitted_points(
    engine: Engine, clock: FakeClock, simulator: Any
) -> None:
    """Cancelling the stream and closing the collector leaves nothing uncommitted."""
    async with simulator(charge_points=10, push_total=3000) as sim:
        collector = engine.collector(config_for(sim), clock)
        task = engine.run(collector.stream())
        await engine.until(lambda: engine.outbox.depth >= 500)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await collector.close()
        received = collector.subscription.received  # type: ignore[union-attr]
    assert engine.outbox.depth == received
