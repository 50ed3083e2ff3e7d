"""Clocks and the account quota: at most N requests in any window of T seconds.

Enedis counts requests per application (Data Connect) or per token (Conso API): 5 per second
and 1000 per hour by default, shared by every PRM of the account. `SlidingWindow` lets a
request go only when fewer than N requests may have reached the server in the last T
seconds (those in flight included). This holds against fixed-window and sliding-window
counters alike; a leaky bucket (aiolimiter's model) admits up to 2 N requests inside one
server window after its initial burst, which a windowed quota answers with 429.

Time comes from an injected `Clock`, so the same code runs on the wall clock in production
and on a `SimulatedClock` in the benchmark, where sleeping only moves the hands.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Any, Protocol

__all__ = [
    "AccountQuota",
    "Clock",
    "Quota",
    "SimulatedClock",
    "SlidingWindow",
    "Ticket",
    "WallClock",
]


class Clock(Protocol):
    """Epoch seconds, a way to wait for them, and notice of requests in flight."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def started(self) -> None:
        """A request left (a simulated clock does not move while requests are in flight)."""
        ...

    def finished(self) -> None:
        """A request's answer is back."""
        ...


class Quota(Protocol):
    """What the client needs from a rate limiter."""

    async def acquire(self) -> Any:
        """Wait for a place; returns a ticket for `release()`."""
        ...

    def release(self, ticket: Any) -> None: ...

    def pause_until(self, moment: float) -> None: ...


class WallClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def started(self) -> None:
        """Real requests take real time: nothing to do."""

    def finished(self) -> None:
        """Real requests take real time: nothing to do."""


class SimulatedClock:
    """A clock whose `sleep` moves time forward instantly (benchmarks and tests).

    Requests take no simulated time: a sleeper first waits until no request is in flight,
    then moves the hands, so the server sees each request at the instant it was sent.
    Sleeps are serialised by the quota's lock, so time simply advances by each of them."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.slept = 0.0

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def started(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight <= 0:
            self._in_flight = 0
            self._idle.set()

    async def sleep(self, seconds: float) -> None:
        await self._idle.wait()
        if seconds > 0:
            # at least one representable step, so a tiny wait cannot leave time standing still
            self._now = max(self._now + seconds, math.nextafter(self._now, math.inf))
            self.slept += seconds
        await asyncio.sleep(0)


class SlidingWindow:
    """At most `limit` requests in any `period` seconds (plus `margin` of safety).

    The server counts a request when it arrives, somewhere between the moment we send it and
    the moment its answer is back. So a request occupies the window from its start until
    `period` after its answer: in flight it counts, and it expires `period` after it ended.
    Answers end in clock order, so the end times form a sorted deque."""

    def __init__(self, limit: int, period: float, margin: float = 0.0) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self.margin = margin
        self.in_flight = 0
        self._ended: deque[float] = deque()

    def wait_time(self, now: float) -> float | None:
        """Seconds until one more request fits (0: now); None when only an answer still in
        flight can free a place."""
        horizon = self.period + self.margin
        while self._ended and self._ended[0] <= now - horizon:
            self._ended.popleft()
        excess = len(self._ended) + self.in_flight - self.limit + 1
        if excess <= 0:
            return 0.0
        if excess > len(self._ended):
            return None
        return self._ended[excess - 1] + horizon - now

    def start(self) -> None:
        self.in_flight += 1

    def end(self, now: float) -> None:
        self.in_flight -= 1
        self._ended.append(now)


class Ticket:
    """One granted request; give it back with `AccountQuota.release()` once answered."""

    __slots__ = ("released",)

    def __init__(self) -> None:
        self.released = False


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
        self._answered = asyncio.Event()
        self._paused_until = 0.0
        self.granted = 0

    def pause_until(self, moment: float) -> None:
        self._paused_until = max(self._paused_until, moment)

    async def acquire(self) -> Ticket:
        """Wait until one more request fits every window; count it as in flight."""
        async with self._lock:
            while True:
                now = self.clock.now()
                waits = [window.wait_time(now) for window in self.windows]
                if any(wait is None for wait in waits):
                    self._answered.clear()
                    await self._answered.wait()
                    continue
                wait = max(self._paused_until - now, *(w for w in waits if w is not None))
                if wait <= 0:
                    break
                await self.clock.sleep(wait)
            for window in self.windows:
                window.start()
            self.clock.started()
            self.granted += 1
            return Ticket()

    def release(self, ticket: Ticket) -> None:
        """The request's answer is back (or it failed): its place expires a period later."""
        if ticket.released:
            return
        ticket.released = True
        now = self.clock.now()
        for window in self.windows:
            window.end(now)
        self.clock.finished()
        self._answered.set()
