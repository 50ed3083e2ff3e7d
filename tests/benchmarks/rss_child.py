"""The daemon of the memory benchmark: `chargeflux run` with a source that floods the outbox.

Run as ``python -m tests.benchmarks.rss_child run --config PATH`` from the repository root.
It registers the `flood` source (the only one installed), then runs the real command line.
The source streams the benchmark data set (`bench_data.iter_emits`, generated lazily, as a
collector fetches page after page) through four concurrent emitters, one per source kind,
each batch committed with its checkpoint, until at least `points` records are in the
outbox; then it records how many in the checkpoint `done`. Pointed
at an InfluxDB that is down, everything stays queued, and the parent measures the RSS.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from daemon import registry
from daemon.collector import CollectorContext, Job, SourceConfig, SourcePlugin
from tests.benchmarks.bench_data import iter_emits

__all__ = ["PLUGIN", "SOURCE"]

SOURCE = "flood"


class FloodConfig(SourceConfig):
    points: int = 5_000_000
    emitters: int = 4


class FloodCollector:
    """Emits the whole data set once, then idles."""

    def __init__(self, config: FloodConfig, ctx: CollectorContext) -> None:
        self._config = config
        self._ctx = ctx

    def jobs(self) -> Sequence[Job]:
        return []

    async def stream(self) -> None:
        target = self._config.points
        emits = iter_emits(target + target // 10)  # a little more than needed: stop at target
        emitted = 0

        async def emitter(index: int) -> None:
            nonlocal emitted
            for page, emit in enumerate(emits):
                if emitted >= target:
                    return
                emitted += len(emit.points)
                await self._ctx.emit.points(emit.points, checkpoint={f"emitter{index}": page})

        await asyncio.gather(*(emitter(index) for index in range(self._config.emitters)))
        await self._ctx.checkpoints.set("done", emitted)

    async def close(self) -> None:
        return None


PLUGIN = SourcePlugin(name=SOURCE, config_model=FloodConfig, create=FloodCollector)


def main(argv: Sequence[str]) -> int:
    """The real command line, with `flood` as the only installed source."""
    registry.SOURCES.clear()
    registry.SOURCES[SOURCE] = "tests.benchmarks.rss_child"
    from daemon.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
