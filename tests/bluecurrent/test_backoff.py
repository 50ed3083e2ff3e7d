"""Reconnect backoff, login pacing and the request-limit reset (on a simulated clock)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from collectors.bluecurrent.backoff import (
    Backoff,
    LoginLimiter,
    next_limit_reset,
    until_limit_reset,
)
from tests.bluecurrent.support import FakeClock


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    """Delays grow 1, 2, 4 ... seconds, each jittered within [d/2, d], capped at 60 s."""
    backoff = Backoff(FakeClock(), random.Random(3))
    delays = [backoff.next_delay() for _ in range(12)]
    for attempt, delay in enumerate(delays):
        ceiling = min(60.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert all(30.0 <= delay <= 60.0 for delay in delays[6:])


def test_backoff_resets_after_a_stable_minute_only() -> None:
    """A connection up for 60 s resets the schedule; a shorter one does not."""
    clock = FakeClock()
    backoff = Backoff(clock, random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.connected()
    clock.advance(59)
    assert backoff.next_delay() >= 16.0
    backoff.connected()
    clock.advance(60)
    assert backoff.next_delay() <= 1.0


async def test_login_limiter_allows_three_logins_per_five_minutes() -> None:
    """The fourth login within five minutes waits until the first leaves the window."""
    clock = FakeClock()
    limiter = LoginLimiter(clock, max_logins=3, window=300)
    assert [await limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(100)
    waited = await limiter.acquire()
    assert waited == pytest.approx(200.0)
    assert clock.sleeps == [pytest.approx(200.0)]
    assert limiter.wait_time() == 0.0, "the three early logins left the window together"


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        # summer (CEST, UTC+2): next 00:00:30 local is 22:00:30 UTC the same day
        (utc(2026, 6, 15, 10, 0), utc(2026, 6, 15, 22, 0, 30)),
        # winter (CET, UTC+1)
        (utc(2026, 1, 15, 10, 0), utc(2026, 1, 15, 23, 0, 30)),
        # evening before spring forward (29 March 2026): reset still in CET
        (utc(2026, 3, 28, 20, 0), utc(2026, 3, 28, 23, 0, 30)),
        # the spring-forward day itself: next reset is in CEST
        (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 22, 0, 30)),
        # the fall-back day (25 October 2026): reset after it is in CET
        (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 23, 0, 30)),
        # 00:00:10 local: the reset is 20 seconds away, not a day
        (utc(2026, 1, 15, 23, 0, 10), utc(2026, 1, 15, 23, 0, 30)),
        # exactly at the reset: the next one
        (utc(2026, 1, 15, 23, 0, 30), utc(2026, 1, 16, 23, 0, 30)),
    ],
)
def test_request_limit_reset_is_0030_amsterdam(now: datetime, reset: datetime) -> None:
    """The reset is the next 00:00:30 Europe/Amsterdam, right across DST changes."""
    assert next_limit_reset(now) == reset
    assert until_limit_reset(now) == (reset - now).total_seconds()


def test_wait_spans_the_short_and_the_long_day() -> None:
    """Over the 23-hour and the 25-hour day the wait is computed in real seconds, not by
    local wall-clock arithmetic (which would be off by an hour)."""
    spring = utc(2026, 3, 28, 23, 30)  # 00:30 CET on 29 March, the 23-hour day
    assert until_limit_reset(spring) == 22 * 3600 + 30 * 60 + 30
    autumn = utc(2026, 10, 24, 22, 30)  # 00:30 CEST on 25 October, the 25-hour day
    assert until_limit_reset(autumn) == 24 * 3600 + 30 * 60 + 30
