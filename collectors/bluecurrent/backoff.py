"""Time, backoff and limits of the BlueCurrent connection.

- `Clock`: the seam through which the collector reads time and sleeps, so tests run the
  reconnect schedule on a simulated clock instead of waiting.
- `Backoff`: jittered exponential reconnect delays (1 s doubling to 60 s), reset once a
  connection stayed up for a stable minute.
- `LoginLimiter`: never more than `max_logins` token validations in a sliding window
  (3 in 5 minutes by default); the next login waits for the window instead of failing.
- `until_limit_reset`: BlueCurrent's request limit resets at 00:00:30 Europe/Amsterdam; the
  wait is computed on aware datetimes in UTC, so it is right across DST changes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Protocol
from zoneinfo import ZoneInfo

from daemon.backoff import Backoff as BaseBackoff

__all__ = [
    "AMSTERDAM",
    "Backoff",
    "Clock",
    "LoginLimiter",
    "SystemClock",
    "next_limit_reset",
    "until_limit_reset",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_RESET_AT = clock_time(0, 0, 30)


class Clock(Protocol):
    """Where the collector gets time from, and how it waits."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (durations, windows)."""
        ...

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch (point timestamps)."""
        ...

    def now(self) -> datetime:
        """The current aware UTC datetime (request-limit reset)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def next_limit_reset(now: datetime) -> datetime:
    """The next 00:00:30 Europe/Amsterdam strictly after `now` (an aware datetime)."""
    local = now.astimezone(AMSTERDAM)
    target = datetime.combine(local.date(), _RESET_AT, AMSTERDAM)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), _RESET_AT, AMSTERDAM)
    return target.astimezone(UTC)


def until_limit_reset(now: datetime) -> float:
    """Seconds from `now` until the request limit resets (00:00:30 Europe/Amsterdam)."""
    return (next_limit_reset(now) - now.astimezone(UTC)).total_seconds()


class Backoff(BaseBackoff):
    """The engine's jittered exponential backoff, plus the stable-connection rule: a
    connection that lasted `stable_after` seconds resets the attempt counter."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        initial: float = 1.0,
        cap: float = 60.0,
        stable_after: float = 60.0,
    ) -> None:
        super().__init__(initial, cap, rng)
        self._clock = clock
        self.stable_after = stable_after
        self._connected_at: float | None = None

    def connected(self) -> None:
        """A connection is up and subscribed."""
        self._connected_at = self._clock.monotonic()

    def reset(self) -> None:
        super().reset()
        self._connected_at = None

    def next_delay(self) -> float:
        """The delay before the next connection attempt (call after a drop or failure)."""
        if (
            self._connected_at is not None
            and self._clock.monotonic() - self._connected_at >= self.stable_after
        ):
            self.attempt = 0
        self._connected_at = None
        return self.next()


class LoginLimiter:
    """At most `max_logins` logins in any `window` seconds; `acquire` waits for a slot."""

    def __init__(self, clock: Clock, *, max_logins: int = 3, window: float = 300.0) -> None:
        self._clock = clock
        self.max_logins = max_logins
        self.window = window
        self._stamps: deque[float] = deque()

    def wait_time(self) -> float:
        """Seconds until a login is allowed (0 when one is allowed now)."""
        now = self._clock.monotonic()
        while self._stamps and now - self._stamps[0] >= self.window:
            self._stamps.popleft()
        if len(self._stamps) < self.max_logins:
            return 0.0
        return self._stamps[0] + self.window - now

    async def acquire(self) -> float:
        """Wait until a login is allowed, record it, and return how long we waited."""
        waited = 0.0
        while (delay := self.wait_time()) > 0:
            waited += delay
            await self._clock.sleep(delay)
        self._stamps.append(self._clock.monotonic())
        return waited
