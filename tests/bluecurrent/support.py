"""Helpers of the BlueCurrent tests: a simulated clock, an engine slice (state DB, outbox,
emitter) that reads back what was committed, and a config aimed at the simulator."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.bluecurrent.collector import BlueCurrentCollector
from collectors.bluecurrent.config import BlueCurrentConfig
from collectors.bluecurrent.simulator import BlueCurrentSimulator
from daemon.collector import CollectorContext
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import Point, parse, split_lines
from daemon.state import StateDB


class FakeClock:
    """Simulated time: `sleep` records the delay, advances the clock and returns at once."""

    def __init__(self, now: datetime | None = None) -> None:
        self.start = now or datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def monotonic(self) -> float:
        return self.elapsed

    def time_ns(self) -> int:
        return time.time_ns()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        await asyncio.sleep(0)


@dataclass
class Engine:
    """A real engine slice: state DB, outbox, emitter and a collector context."""

    ctx: CollectorContext
    outbox: Outbox
    db: StateDB
    counters: Counters
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def points(self) -> list[Point]:
        """Every point committed to the outbox, in commit order."""
        found: list[Point] = []
        after = 0
        while (batch := await self.outbox.read_batch(1_000_000, after)) is not None:
            found.extend(parse(line) for line in split_lines(batch.body.decode()))
            after = batch.last_id
        return found

    async def until(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait (on outbox commits) until `predicate()` holds."""
        async with asyncio.timeout(timeout):
            while True:
                self.outbox.committed.clear()
                if predicate():
                    return
                try:
                    async with asyncio.timeout(0.5):
                        await self.outbox.committed.wait()
                except TimeoutError:
                    continue

    def collector(
        self, config: BlueCurrentConfig, clock: FakeClock, seed: int = 7
    ) -> BlueCurrentCollector:
        return BlueCurrentCollector(config, self.ctx, clock=clock, rng=random.Random(seed))

    def run(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task


def config_for(sim: BlueCurrentSimulator, **extra: Any) -> BlueCurrentConfig:
    """A config block aimed at the simulator."""
    block: dict[str, Any] = {
        "api_token": sim.options.api_token,
        "ws_url": sim.ws_url,
        "api_url": sim.api_url,
        "request_timeout_s": 5.0,
    }
    block.update(extra)
    return BlueCurrentConfig.model_validate(block)
