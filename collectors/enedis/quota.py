"""Clocks and the account quota: at most N requests in any window of T seconds.

Enedis counts requests per application (Data Connect) or per token (Conso API): 5 per second
and 1000 per hour by default, shared by every PRM of the account. `SlidingWindow` keeps the
start times of the last N requests and lets a request go only when fewer than N started in
the last T seconds. This is exact against fixed-window and sliding-window counters alike; a
leaky bucket (aiolimiter's model) admits up to 2 N requests inside one server window after
its initial burst, which a windowed quota answers with 429.

Time comes from an injected `Clock`, so the same code runs on the wall clock in production
and on a `SimulatedClock` in the benchmark, where sleeping only moves the hands.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

__all__ = ["AccountQuota", "Clock", "SimulatedClock", "SlidingWindow", "WallClock"]


class Clock(Protocol):
    """Epoch seconds and a way to wait for them."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """A clock whose `sleep` moves time forward instantly (benchmarks and tests).

    Sleeps are assumed to be serialised (the quota holds a lock while it waits), so the
    clock simply advances by each sleep; it yields to the event loop so others can run."""

    def __init__(self, start: float) -> None:
        self._now = start
        self.slept = 0.0

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds
            self.slept += seconds
        await asyncio.sleep(0)


class SlidingWindow:
    """At most `limit` events in any `period` seconds (plus `margin` of safety)."""

    def __init__(self, limit: int, period: float, margin: float = 0.0) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self.margin = margin
        self._starts: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        horizon = self.period + self.margin
        while self._starts and self._starts[0] <= now - horizon:
            self._starts.popleft()
        if len(self._starts) < self.limit:
            return 0.0
        return self._starts[0] + horizon - now

    def record(self, now: float) -> None:
        self._starts.append(now)
        if len(self._starts) > self.limit:
            self._starts.popleft()


class AccountQuota:
    """The quotas of one account: every request of every PRM goes through `acquire()`.

    Waiters are served in arrival order (one lock). `pause_until()` holds everyone back
    after a 429 until the moment the server named."""

    def __init__(
        self,
        clock: Clock,
        per_second: int = 5,
        per_hour: int = 1000,
        margin: float = 0.05,
    ) -> None:
        self.clock = clock
        self.windows = (
            SlidingWindow(per_second, 1.0, margin),
            SlidingWindow(per_hour, 3600.0, margin),
        )
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self.granted = 0
        self.waited = 0.0

    def pause_until(self, moment: float) -> None:
        self._paused_until = max(self._paused_until, moment)

    async def acquire(self) -> None:
        """Wait until one more request fits every window, then count it."""
        async with self._lock:
            while True:
                now = self.clock.now()
                wait = max(
                    self._paused_until - now, *(window.wait_time(now) for window in self.windows)
                )
                if wait <= 0:
                    break
                self.waited += wait
                await self.clock.sleep(wait)
            for window in self.windows:
                window.record(now)
            self.granted += 1
