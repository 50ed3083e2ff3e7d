"""The collector end to end against the simulator: backfill, resume, DST, errors, checks."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import structlog

from collectors.enedis.client import NotSubscribed
from collectors.enedis.collector import poll_minute
from collectors.enedis.parsing import PARIS
from collectors.enedis.plan import start_bound
from collectors.enedis.quota import SimulatedClock
from collectors.enedis.sim_data import Meter, day_slots, power
from collectors.enedis.simulator import EnedisSimulator, Fault
from daemon.errors import SourceError
from daemon.points import Point, to_ns
from tests.enedis.harness import Harness, config

FULL = "22516914714270"
TODAY = date(2026, 10, 20)
CURVE_ONLY = {"daily": False, "max_power": False}


def _curve_requests(sim: EnedisSimulator, prm: str) -> Counter[tuple[str, str]]:
    return Counter(
        {
            (k[3], k[4]): n
            for k, n in sim.window_requests.items()
            if k[1].startswith("load_curve") and k[2] == prm
        }
    )


def _utc(text: str) -> int:
    return to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))


def _by_time(points: list[Point]) -> dict[int, Point]:
    return {p.time_ns: p for p in points}


async def test_two_year_backfill_stores_every_interval_once(
    harness: Harness, sim: EnedisSimulator
) -> None:
    """A 24-month backfill takes ceil(days/7) requests, stores each slot once, right on DST."""
    await harness.collector(config(sim.url, [{"prm": FULL, **CURVE_ONLY}])).sync()
    first = start_bound("load_curve", TODAY, history_months=36)
    days = (TODAY - first).days
    requests = _curve_requests(sim, FULL)
    assert sum(requests.values()) == math.ceil(days / 7) and set(requests.values()) == {1}
    assert min(requests)[0] == first.isoformat() and max(requests)[1] == TODAY.isoformat()
    points = await harness.points("enedis_load_curve")
    meter = sim.meters[FULL]
    expected = [
        s
        for d in range(days)
        for s in day_slots(meter, "consumption", first + timedelta(days=d)) or []
    ]
    assert len(points) == len(expected) == len({p.time_ns for p in points})
    assert [p.time_ns for p in sorted(points, key=lambda p: p.time_ns)] == [
        to_ns(s.start) for s in expected
    ]
    stored = _by_time(points)
    for slot in expected[:: len(expected) // 50]:
        point = stored[to_ns(slot.start)]
        assert point.fields["power_w"] == slot.value
        assert point.fields["energy_wh"] == slot.value * 0.5
        assert point.fields["interval_s"] == 1800
        assert point.tags == {"prm": FULL, "direction": "consumption", "period": "BASE"}
    # DST days of 2025: 46 and 50 half-hours, at the right UTC starts
    per_day = Counter(p.time.astimezone(PARIS).date() for p in points)
    assert per_day[date(2025, 3, 30)] == 46 and per_day[date(2025, 10, 26)] == 50
    assert per_day[date(2025, 3, 29)] == 48 and per_day[date(2025, 10, 27)] == 48
    for text in [
        "2025-03-29T23:00",
        "2025-03-30T00:30",
        "2025-03-30T01:00",
        "2025-10-25T22:00",
        "2025-10-26T00:00",
        "2025-10-26T00:30",
        "2025-10-26T01:00",
        "2025-10-26T01:30",
        "2025-10-26T22:30",
    ]:
        start = datetime.fromisoformat(text).replace(tzinfo=UTC)
        assert stored[to_ns(start)].fields["power_w"] == power(meter, "consumption", start)
    # the repeated local hour: four distinct slots whose local starts repeat 02:00 and 02:30
    repeated = [
        p.time.astimezone(PARIS)
        for p in points
        if p.time.astimezone(PARIS).date() == date(2025, 10, 26)
        and p.time.astimezone(PARIS).hour == 2
    ]
    assert sorted(t.strftime("%H:%M%z") for t in repeated) == [
        "02:00+0100",
        "02:00+0200",
        "02:30+0100",
        "02:30+0200",
    ]
    assert _utc("2025-03-30T01:00") - _utc("2025-03-30T00:30") == 1800 * 10**9


async def test_restart_after_cancel_repeats_no_finished_window(
    harness: Harness, sim: EnedisSimulator
) -> None:
    """Stopping mid-backfill and starting again re-asks no committed window."""
    cfg = config(sim.url, [{"prm": FULL, **CURVE_ONLY}], history_days=120)
    task = asyncio.create_task(harness.collector(cfg).sync())
    assert harness.emitter is not None
    await asyncio.wait_for(harness.emitter.wait_commits(6), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    committed = await harness.checkpoints.get(f"stream/{FULL}/load_curve/consumption")  # type: ignore[union-attr]
    before = dict(_curve_requests(sim, FULL))
    await harness.collector(cfg).sync()
    after = _curve_requests(sim, FULL)
    done_from = date.fromisoformat(committed["done_from"])
    for (first, _end), count in after.items():
        if date.fromisoformat(first) >= done_from:
            assert count == 1, first  # finished before the stop: never asked again
    assert sum(after.values()) - len(after) <= 1  # at most the one window in flight
    assert sum(after.values()) >= sum(before.values())
    points = await harness.points("enedis_load_curve")
    assert len(points) == len({p.time_ns for p in points}) == 120 * 48


async def test_daily_poll_asks_only_the_new_day(
    harness: Harness, sim: EnedisSimulator, clock: SimulatedClock
) -> None:
    """The next day's poll sends one request per stream, for yesterday only."""
    cfg = config(sim.url, [{"prm": FULL}], history_days=30)
    await harness.collector(cfg).sync()
    seen = set(sim.window_requests)
    clock.advance(86400)
    await harness.collector(cfg).sync()
    new = set(sim.window_requests) - seen
    assert {(k[1], k[3], k[4]) for k in new} == {
        (stream, "2026-10-20", "2026-10-21")
        for stream in ("load_curve/consumption", "daily/consumption", "max_power/consumption")
    }
    await harness.collector(cfg).sync()
    assert set(sim.window_requests) - seen == new  # same day again: nothing to ask


async def test_holes_become_gaps_and_recent_holes_wait(
    harness: Harness, clock: SimulatedClock
) -> None:
    """Tuesday nulls and missing Wednesdays are recorded gaps; recent ones are asked again."""
    clock.advance(2 * 86400)  # Thursday 22 October 2026: yesterday and the day before are holes
    sim = EnedisSimulator(clock)
    holes = "42900589957123"
    async with sim.running():
        cfg = config(sim.url, [{"prm": holes, **CURVE_ONLY}], history_days=14)
        await harness.collector(cfg).sync()
        state = await harness.checkpoints.get(f"stream/{holes}/load_curve/consumption")  # type: ignore[union-attr]
        assert state["done_to"] == "2026-10-20"  # Tue 20 and Wed 21 not published yet
        gaps = [p for p in await harness.points("anomaly") if p.tags["rule"] == "GAP"]
        assert {p.time.astimezone(PARIS).date() for p in gaps} == {date(2026, 10, 13)}
        assert gaps[0].fields["value"] == 2 * 86400
        clock.advance(86400)
        await harness.collector(cfg).sync()
        gaps = [p for p in await harness.points("anomaly") if p.tags["rule"] == "GAP"]
        assert {p.time.astimezone(PARIS).date() for p in gaps} == {
            date(2026, 10, 13),
            date(2026, 10, 20),
        }
        curve = await harness.points("enedis_load_curve")
        assert {p.time.astimezone(PARIS).weekday() for p in curve} == {0, 3, 4, 5, 6}


async def test_revoked_consent_disables_the_prm_durably(
    harness: Harness, sim: EnedisSimulator, clock: SimulatedClock
) -> None:
    """ADAM-DC-0008 disables every stream of that PRM once; the other PRM carries on."""
    revoked = "26584978546985"
    cfg = config(sim.url, [{"prm": revoked}, {"prm": FULL}], history_days=10)
    with structlog.testing.capture_logs() as logs:
        await harness.collector(cfg).sync()
    disabled = [e for e in logs if e["event"] == "enedis_stream_disabled"]
    assert len(disabled) == 1 and disabled[0]["code"] == "ADAM-DC-0008"
    anomalies = [p for p in await harness.points("anomaly") if p.tags["rule"] == "STREAM_DISABLED"]
    assert len(anomalies) == 1 and anomalies[0].tags["subject"] == revoked
    assert len(await harness.points("enedis_daily")) == 10
    states = await harness.checkpoints.items()  # type: ignore[union-attr]
    assert all(v["disabled"]["code"] == "ADAM-DC-0008" for k, v in states.items() if revoked in k)
    asked = sum(n for k, n in sim.window_requests.items() if k[2] == revoked)
    await harness.collector(cfg).sync()  # a restart: still disabled, not asked
    assert sum(n for k, n in sim.window_requests.items() if k[2] == revoked) == asked
    clock.advance(8 * 86400)  # after disabled_retry_days it is tried once more
    await harness.collector(cfg).sync()
    assert sum(n for k, n in sim.window_requests.items() if k[2] == revoked) > asked


async def test_wrong_direction_and_missing_curve_disable_single_streams(
    harness: Harness, sim: EnedisSimulator
) -> None:
    """ERR0069 and ERR0075 disable only the stream concerned; the others are collected."""
    cfg = config(
        sim.url,
        [
            {"prm": "24880057139941", "production": True, "max_power": False},
            {"prm": "32320647321714"},
        ],
        history_days=7,
    )
    await harness.collector(cfg).sync()
    states = await harness.checkpoints.items()  # type: ignore[union-attr]
    codes = {k: (v["disabled"] or {}).get("code") for k, v in states.items()}
    assert codes == {
        "stream/24880057139941/load_curve/consumption": "ADAM-ERR0069",
        "stream/24880057139941/daily/consumption": "ADAM-ERR0069",
        "stream/24880057139941/load_curve/production": None,
        "stream/24880057139941/daily/production": None,
        "stream/32320647321714/load_curve/consumption": "ADAM-ERR0075",
        "stream/32320647321714/daily/consumption": None,
        "stream/32320647321714/max_power/consumption": None,
    }
    curve = await harness.points("enedis_load_curve")
    assert {(p.tags["prm"], p.tags["direction"]) for p in curve} == {
        ("24880057139941", "production")
    }


async def test_activation_moves_the_backfill_start(harness: Harness, clock: SimulatedClock) -> None:
    """ADAM-ERR0123 moves the start to the activation day; later runs ask nothing more."""
    meters = [Meter(FULL, activation=date(2026, 9, 3))]
    sim = EnedisSimulator(clock, meters=meters)
    async with sim.running():
        cfg = config(sim.url, [{"prm": FULL, **CURVE_ONLY}], history_days=90)
        with structlog.testing.capture_logs() as logs:
            await harness.collector(cfg).sync()
        assert any(e["event"] == "enedis_backfill_start_moved" for e in logs)
        points = await harness.points("enedis_load_curve")
        assert min(p.time.astimezone(PARIS).date() for p in points) == date(2026, 9, 3)
        assert len(points) == len({p.time_ns for p in points}) == 47 * 48
        asked = sum(sim.window_requests.values())
        await harness.collector(cfg).sync()
        assert sum(sim.window_requests.values()) == asked


async def test_checks_flag_negative_and_overpower_values(
    harness: Harness, clock: SimulatedClock
) -> None:
    """A negative slot and slots above the subscribed power become anomaly points."""
    meter = Meter(FULL, overrides={"2026-10-15 12:00:00": "-50"})
    sim = EnedisSimulator(clock, meters=[meter])
    async with sim.running():
        cfg = config(sim.url, [{"prm": FULL, "subscribed_power_kva": 2}], history_days=7)
        await harness.collector(cfg).sync()
    anomalies = await harness.points("anomaly")
    negative = [p for p in anomalies if p.tags["rule"] == "NEGATIVE"]
    assert [(p.time_ns // 10**9, p.fields["value"]) for p in negative] == [
        (_utc("2026-10-15T09:30") // 10**9, -50.0)
    ]
    over = [p for p in anomalies if p.tags["rule"] == "OVERPOWER"]
    curve = await harness.points("enedis_load_curve")
    assert {p.time_ns for p in over if p.time_ns % 10**9 == 0} == {
        p.time_ns for p in curve if p.fields["power_w"] > 2000
    }
    assert all(p.fields["threshold"] == 2000.0 and p.tags["source"] == "enedis" for p in over)
    assert any(p.time_ns % 10**9 == 4000 for p in over)  # the max-power stream too


async def test_contract_endpoint_gives_the_subscribed_power(
    harness: Harness, clock: SimulatedClock
) -> None:
    """Without a configured power, the contract's subscribed power is the threshold."""
    sim = EnedisSimulator(clock, meters=[Meter(FULL, subscribed_kva=1.5)])
    async with sim.running():
        cfg = config(sim.url, [{"prm": FULL, **CURVE_ONLY}], history_days=2, fetch_contract=True)
        await harness.collector(cfg).sync()
    assert await harness.checkpoints.get(f"contract/{FULL}") == {  # type: ignore[union-attr]
        "kva": 1.5,
        "fetched": "2026-10-20",
    }
    over = [p for p in await harness.points("anomaly") if p.tags["rule"] == "OVERPOWER"]
    assert over and all(p.fields["threshold"] == 1500.0 for p in over)


async def test_offpeak_hours_tag_hc_and_hp(harness: Harness, sim: EnedisSimulator) -> None:
    """With 22:00-06:00 off-peak, 16 of 48 slots a day are HC, by local slot start."""
    cfg = config(
        sim.url, [{"prm": FULL, **CURVE_ONLY}], history_days=3, offpeak_hours=["22:00-06:00"]
    )
    await harness.collector(cfg).sync()
    points = await harness.points("enedis_load_curve")
    periods = Counter(p.tags["period"] for p in points)
    assert periods == {"HC": 48, "HP": 96}
    for point in points:
        local = point.time.astimezone(PARIS)
        assert (point.tags["period"] == "HC") == (local.hour >= 22 or local.hour < 6)


async def test_ten_minute_steps_and_daily_totals(harness: Harness, clock: SimulatedClock) -> None:
    """PT10M slots are honoured (energy = power x 600 s) and sum to the daily energy."""
    sim = EnedisSimulator(clock, meters=[Meter(FULL, step_minutes=10)])
    async with sim.running():
        cfg = config(sim.url, [{"prm": FULL}], history_days=2)
        await harness.collector(cfg).sync()
    curve = await harness.points("enedis_load_curve")
    assert len(curve) == 2 * 144 and {p.fields["interval_s"] for p in curve} == {600}
    assert all(p.fields["energy_wh"] == p.fields["power_w"] / 6 for p in curve)
    daily = await harness.points("enedis_daily")
    for point in daily:
        day = point.time.astimezone(PARIS).date()
        total = sum(p.fields["energy_wh"] for p in curve if p.time.astimezone(PARIS).date() == day)
        assert point.fields["energy_wh"] == pytest.approx(total, abs=1)
        assert point.time == datetime(day.year, day.month, day.day, tzinfo=PARIS)


async def test_bad_answer_stops_one_stream_and_the_next_run_resumes(
    harness: Harness, sim: EnedisSimulator
) -> None:
    """Malformed JSON fails its stream for this run only; the rerun completes it."""
    cfg = config(sim.url, [{"prm": FULL, **CURVE_ONLY}], history_days=7)
    sim.inject(Fault(200, "{oops"))
    with pytest.raises(SourceError, match="1 Enedis stream"):
        await harness.collector(cfg).sync()
    assert await harness.points("enedis_load_curve") == []
    await harness.collector(cfg).sync()
    assert len(await harness.points("enedis_load_curve")) == 7 * 48


def test_poll_time_is_after_eight_at_a_non_round_minute() -> None:
    """The daily poll runs between 08:05 and 08:59 at a minute not divisible by 5."""
    for index in range(40):
        cfg = config("http://x", [{"prm": f"{index:014d}"}])
        hour, minute = poll_minute(cfg)
        assert hour == 8 and 5 < minute < 60 and minute % 5
    cfg = config("http://x", [{"prm": FULL}], poll_at="09:13")
    assert poll_minute(cfg) == (9, 13)


async def test_unsubscribed_application_fails_the_run(
    harness: Harness, clock: SimulatedClock
) -> None:
    """403 900908 stops the whole run with a clear error and commits nothing."""
    sim = EnedisSimulator(clock, unsubscribed={"demo-client"})
    async with sim.running():
        cfg = config(sim.url, [{"prm": FULL}, {"prm": "64975835695673"}], history_days=7)
        with pytest.raises(NotSubscribed, match="not subscribed"):
            await harness.collector(cfg).sync()
    assert await harness.points() == []
    assert await harness.checkpoints.items() == {}  # type: ignore[union-attr]
