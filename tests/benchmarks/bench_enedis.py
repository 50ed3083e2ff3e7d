"""Benchmark: 24-month backfill of 10 PRMs against the Enedis simulator, simulated clock.

Quotas 5 requests/s and 1000/h on both sides (client and simulator), on a simulated clock
shared by both, so hours of quota waiting take seconds. Measures:

- requests sent vs the theoretical minimum (sum over streams of ceil(days / window));
- 429 answers (must be 0);
- quota utilisation while work remains: requests sent / the most requests the quotas admit
  in the same elapsed time (must be >= 95 %), and the ideal duration / actual duration.

Baseline, measured in the same run: the same collector with a leaky-bucket limiter (the
model of aiolimiter, a burst of N then N per period), which is what a client built on a
leaky bucket would do; it meets the windowed quota with 429s and waits.

Run: python tests/benchmarks/bench_enedis.py   (exit 1 when a target is missed)
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import aiohttp
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collectors.enedis.client import WINDOW_DAYS
from collectors.enedis.parsing import PARIS
from collectors.enedis.plan import start_bound
from collectors.enedis.quota import Clock, Quota, SimulatedClock
from collectors.enedis.sim_data import Meter
from collectors.enedis.simulator import EnedisSimulator
from tests.enedis.harness import Harness, config

START = datetime(2026, 10, 20, 9, 17, tzinfo=PARIS).timestamp()
PRMS = [f"3000000000{index:04d}" for index in range(10)]
PER_SECOND, PER_HOUR = 5, 1000


class LeakyBucket:
    """aiolimiter's leaky bucket on an injected clock: `limit` burst, drains limit/period."""

    def __init__(self, clock: Clock, limits: Sequence[tuple[int, float]]) -> None:
        self.clock = clock
        self.buckets = [
            [0.0, float(limit), limit / period, clock.now()] for limit, period in limits
        ]
        self.paused_until = 0.0
        self.lock = asyncio.Lock()

    def pause_until(self, moment: float) -> None:
        self.paused_until = max(self.paused_until, moment)

    def release(self, ticket: object) -> None:
        """A leaky bucket forgets a request once it is let through."""

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = self.clock.now()
                wait = self.paused_until - now
                for bucket in self.buckets:
                    level, capacity, rate, last = bucket
                    level = max(0.0, level - (now - last) * rate)
                    bucket[0], bucket[3] = level, now
                    if level + 1 > capacity:
                        wait = max(wait, (level + 1 - capacity) / rate)
                if wait <= 0:
                    break
                await self.clock.sleep(wait)
            for bucket in self.buckets:
                bucket[0] += 1


@dataclass
class Run:
    requests: int
    throttled: int
    first: float
    last: float
    wall: float
    complete: bool

    @property
    def elapsed(self) -> float:
        return self.last - self.first


async def backfill(make_quota: type | None) -> Run:
    clock = SimulatedClock(START)
    simulator = EnedisSimulator(
        clock, meters=[Meter(prm) for prm in PRMS], per_second=PER_SECOND, per_hour=PER_HOUR
    )
    cfg_prms = [{"prm": prm, "subscribed_power_kva": 9} for prm in PRMS]
    with tempfile.TemporaryDirectory() as tmp:
        async with simulator.running() as url, aiohttp.ClientSession() as http:
            harness = await Harness(Path(tmp), http, clock).start()
            cfg = config(url, cfg_prms, history_months=24)
            quota: Quota | None = (
                make_quota(clock, [(PER_SECOND, 1.0), (PER_HOUR, 3600.0)]) if make_quota else None
            )
            collector = harness.collector(cfg) if quota is None else None
            if collector is None:
                from collectors.enedis.collector import EnedisCollector

                collector = EnedisCollector(cfg, harness.context(), clock=clock, quota=quota)
            began = time.perf_counter()
            await collector.sync()
            wall = time.perf_counter() - began
            states = await harness.checkpoints.items()  # type: ignore[union-attr]
            await harness.close()
    today = date(2026, 10, 20)
    complete = all(
        value["done_from"] == start_bound(key.split("/")[2], today, history_months=24).isoformat()  # type: ignore[arg-type]
        and value["done_to"] == today.isoformat()
        for key, value in states.items()
        if key.startswith("stream/")
    )
    times = simulator.request_times
    return Run(len(times), simulator.status_counts[429], times[0], times[-1], wall, complete)


def theoretical_minimum() -> int:
    today = date(2026, 10, 20)
    per_prm = 0
    for kind in ("load_curve", "daily", "max_power"):
        days = (today - start_bound(kind, today, history_months=24)).days  # type: ignore[arg-type]
        per_prm += math.ceil(days / WINDOW_DAYS[kind])  # type: ignore[index]
    return per_prm * len(PRMS)


def capacity(seconds: float) -> int:
    """The most requests the two sliding-window quotas admit within `seconds`."""
    starts: list[float] = []
    now = 0.0
    while True:
        if len(starts) >= PER_SECOND:
            now = max(now, starts[-PER_SECOND] + 1.0)
        if len(starts) >= PER_HOUR:
            now = max(now, starts[-PER_HOUR] + 3600.0)
        if now > seconds + 1e-9:
            return len(starts)
        starts.append(now)


def ideal_duration(count: int) -> float:
    """Time from the first to the last of `count` requests sent as fast as the quotas allow."""
    starts: list[float] = []
    for _ in range(count):
        now = starts[-1] if starts else 0.0
        if len(starts) >= PER_SECOND:
            now = max(now, starts[-PER_SECOND] + 1.0)
        if len(starts) >= PER_HOUR:
            now = max(now, starts[-PER_HOUR] + 3600.0)
        starts.append(now)
    return starts[-1]


async def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    minimum = theoretical_minimum()
    ours = await backfill(None)
    baseline = await backfill(LeakyBucket)
    used = ours.requests / capacity(ours.elapsed)
    pace = ideal_duration(ours.requests) / ours.elapsed if ours.elapsed else 1.0
    print(f"enedis backfill: {len(PRMS)} PRMs x 24 months, quotas {PER_SECOND}/s {PER_HOUR}/h")
    print(f"  requests            {ours.requests} (theoretical minimum {minimum})")
    print(f"  429 answers         {ours.throttled}")
    print(
        f"  simulated duration  {ours.elapsed:.1f} s (ideal {ideal_duration(ours.requests):.1f} s)"
    )
    print(f"  quota utilisation   {used:.1%} of admissible requests, pace {pace:.1%} of ideal")
    print(f"  real time           {ours.wall:.1f} s; backfill complete: {ours.complete}")
    print("baseline (leaky bucket, aiolimiter's model):")
    print(f"  requests            {baseline.requests}, 429 answers {baseline.throttled}")
    print(f"  simulated duration  {baseline.elapsed:.1f} s; complete: {baseline.complete}")
    ratio = baseline.elapsed / ours.elapsed if ours.elapsed else float("inf")
    print(
        f"  sliding window vs baseline: {ratio:.2f}x faster, "
        f"{baseline.throttled - ours.throttled} fewer 429s"
    )
    misses = []
    if ours.requests != minimum:
        misses.append(f"requests {ours.requests} != minimum {minimum}")
    if ours.throttled:
        misses.append(f"{ours.throttled} 429 answers")
    if used < 0.95:
        misses.append(f"utilisation {used:.1%} < 95%")
    if not ours.complete:
        misses.append("backfill incomplete")
    for miss in misses:
        print(f"MISS: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
