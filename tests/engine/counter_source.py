"""A minimal source for engine tests: each job run emits `per_run` numbered points.

It is a real plugin (config model, factory, checkpoint), registered by tests through
`daemon.registry.SOURCES`, so the engine is exercised exactly as with a real source.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from daemon.collector import CollectorContext, Job, PolledCollector, SourceConfig, SourcePlugin
from daemon.points import Point


class CounterConfig(SourceConfig):
    per_run: int = 10
    every_s: float = 3600
    fail: bool = False


class CounterCollector(PolledCollector):
    def __init__(self, config: CounterConfig, ctx: CollectorContext) -> None:
        self.config = config
        self.ctx = ctx

    def jobs(self) -> Sequence[Job]:
        return [Job("count", self.run, every=timedelta(seconds=self.config.every_s))]

    async def run(self) -> None:
        if self.config.fail:
            raise RuntimeError("counter source told to fail")
        start = await self.ctx.checkpoints.get("next", 0)
        points = [
            Point("counter", {"source": "test"}, {"n": n}, 1_700_000_000_000_000_000 + n)
            for n in range(start, start + self.config.per_run)
        ]
        await self.ctx.emit.points(points, checkpoint={"next": start + self.config.per_run})


PLUGIN = SourcePlugin(name="counter", config_model=CounterConfig, create=CounterCollector)
