"""The child daemon of the crash test: the real `chargeflux run` with a source that never stops.

Run as ``python -m tests.integration.crash_child run --config PATH`` from the repository root.
It registers the `sequence` source below through `daemon.registry.SOURCES` (as the only
source, so the test does not depend on the other sources' packages), then hands over to
the real command line, so the whole daemon (pipeline, outbox, flusher, InfluxDB sink,
supervisor, signals) runs exactly as in production.

The source emits the points n = 0, 1, 2, … without end, in batches whose sizes vary with n,
each batch committed together with its checkpoint ``next`` in one transaction. Everything
about a point is a function of n (tags, field, timestamp), so a replay after a crash
overwrites the same point in InfluxDB: after any number of kills, a checkpoint of N means the
points 0..N-1, each exactly once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from daemon import registry
from daemon.collector import CollectorContext, Job, SourceConfig, SourcePlugin
from daemon.points import Point

__all__ = ["MEASUREMENT", "PLUGIN", "SOURCE", "point"]

SOURCE = "sequence"
MEASUREMENT = "crash_sequence"
_T0 = 1_782_864_000 * 1_000_000_000  # 2026-07-01T00:00:00Z


def point(n: int) -> Point:
    """The n-th point: 4 series (shards of n), one millisecond apart."""
    return Point(MEASUREMENT, {"shard": str(n % 4)}, {"n": n}, _T0 + n * 1_000_000)


def batch_size(n: int, smallest: int, largest: int) -> int:
    """How many points the batch starting at n holds (varies, deterministic)."""
    return smallest + (n * 7919) % (largest - smallest + 1)


class SequenceConfig(SourceConfig):
    smallest_batch: int = 20
    largest_batch: int = 400
    pause_s: float = 0.01


class SequenceCollector:
    """A push-style source: one endless stream of numbered points, checkpointed per batch."""

    def __init__(self, config: SequenceConfig, ctx: CollectorContext) -> None:
        self._config = config
        self._ctx = ctx

    def jobs(self) -> Sequence[Job]:
        return []

    async def stream(self) -> None:
        config = self._config
        n = await self._ctx.checkpoints.get("next", 0)
        while True:
            size = batch_size(n, config.smallest_batch, config.largest_batch)
            points = [point(i) for i in range(n, n + size)]
            await self._ctx.emit.points(points, checkpoint={"next": n + size})
            n += size
            await asyncio.sleep(config.pause_s)

    async def close(self) -> None:
        return None


PLUGIN = SourcePlugin(name=SOURCE, config_model=SequenceConfig, create=SequenceCollector)


def main(argv: Sequence[str]) -> int:
    """The real command line, with `sequence` as the only installed source."""
    registry.SOURCES.clear()
    registry.SOURCES[SOURCE] = "tests.integration.crash_child"
    from daemon.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
