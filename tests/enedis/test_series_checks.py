"""The generic series checks (daemon/checks/series.py) and the account quota."""

from __future__ import annotations

import asyncio

import pytest

from collectors.enedis.quota import AccountQuota, SimulatedClock, SlidingWindow
from daemon.checks.series import SeriesChecker, SeriesSample

S = 1_000_000_000
STEP = 1800 * S


def _samples(values: list[float | None], start: int = 0) -> list[SeriesSample]:
    return [SeriesSample(start + i * STEP, STEP, v) for i, v in enumerate(values)]


def test_complete_batch_has_no_anomaly() -> None:
    """A batch covering its expected range with ordinary values yields nothing."""
    checker = SeriesChecker("test")
    assert checker.check("s", "m", _samples([1.0, 2.0, 3.0]), expected=(0, 3 * STEP)) == []


def test_nulls_and_missing_slots_are_one_gap_per_stretch() -> None:
    """Nulls and absent slots in a row make one gap with its length in seconds."""
    checker = SeriesChecker("test")
    samples = _samples([1.0, None, None, 4.0, 5.0])
    samples = [s for s in samples if s.time_ns != 2 * STEP]  # slot 2 absent, slot 1 null
    points = checker.check("s", "m", samples, expected=(0, 7 * STEP), label="curve")
    gaps = [(p.time_ns, p.fields["value"]) for p in points if p.tags["rule"] == "GAP"]
    assert gaps == [(STEP, 3600.0), (5 * STEP, 3600.0)]
    assert all(p.tags["subject"] == "m" and p.tags["source"] == "test" for p in points)
    assert "curve: no data from" in str(points[0].fields["detail"])


def test_empty_batch_is_one_gap() -> None:
    """No samples at all: the whole expected range is one gap."""
    (gap,) = SeriesChecker("test").check("s", "m", [], expected=(10 * S, 20 * S))
    assert gap.time_ns == 10 * S and gap.fields["value"] == 10.0


def test_negative_and_above_limit() -> None:
    """Negative values and values above the limit are flagged with value and threshold."""
    points = SeriesChecker("test").check(
        "s",
        "m",
        _samples([-1.0, 50.0, 9000.5]),
        expected=(0, 3 * STEP),
        limit=9000.0,
        offset_ns=7,
    )
    rules = [(p.tags["rule"], p.fields["value"], p.fields["threshold"], p.time_ns) for p in points]
    assert rules == [("NEGATIVE", -1.0, 0.0, 7), ("OVERPOWER", 9000.5, 9000.0, 2 * STEP + 7)]


def test_live_feed_gaps_use_the_previous_batch() -> None:
    """Without an expected range, a gap is the space after the previous batch's last sample."""
    checker = SeriesChecker("test")
    assert checker.check("s", "m", _samples([1.0, 2.0])) == []
    (gap,) = checker.check("s", "m", _samples([3.0], start=4 * STEP))
    assert gap.time_ns == 2 * STEP and gap.fields["value"] == 3600.0
    assert checker.check("other", "m", _samples([3.0], start=9 * STEP)) == []


def test_sliding_window_never_admits_more_than_its_limit() -> None:
    """Any period holds at most `limit` requests, counted until a period after their answer."""
    window, now, starts = SlidingWindow(5, 1.0), 0.0, []
    for _ in range(40):
        wait = window.wait_time(now)
        assert wait is not None
        now += wait
        window.start()
        window.end(now)
        starts.append(now)
    for index in range(len(starts) - 5):
        assert starts[index + 5] - starts[index] >= 1.0
    assert starts[4] == 0.0  # the burst is allowed


def test_requests_in_flight_hold_their_place() -> None:
    """Unanswered requests count; the window frees a place a period after an answer."""
    window = SlidingWindow(2, 1.0)
    window.start()
    window.start()
    assert window.wait_time(0.0) is None  # only an answer can free a place
    window.end(0.5)
    assert window.wait_time(0.5) == 1.0  # the answered one expires at 1.5
    assert window.wait_time(1.5) == 0.0


async def test_account_quota_on_a_simulated_clock() -> None:
    """Concurrent takers share the quota: 1000 per hour at 5 per second, no real waiting."""
    clock = SimulatedClock(0.0)
    quota = AccountQuota(clock, 5, 1000, margin=0.0)
    grants: list[float] = []

    async def take(count: int) -> None:
        for _ in range(count):
            ticket = await quota.acquire()
            grants.append(clock.now())
            quota.release(ticket)

    await asyncio.gather(*(take(300) for _ in range(4)))
    assert len(grants) == 1200 and grants == sorted(grants)
    assert grants[999] == pytest.approx(199.0)
    assert grants[1000] == pytest.approx(3600.0)
    quota.pause_until(clock.now() + 30)
    quota.release(await quota.acquire())
    assert clock.now() == pytest.approx(grants[-1] + 30)
