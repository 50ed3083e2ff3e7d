"""A minimal source for engine tests: each job run emits `per_run` numbered points.

It is a real plugin (config model, factory, checkpoint), registered by tests through
`daemon.registry.SOURCES`, so the engine is exercised exactly as with a real source. After
each commit it logs `counter_emitted` with the next number, so tests of a child daemon can
wait for progress on its log instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from daemon.collector import CollectorContext, Job, PolledCollector, SourceConfig, SourcePlugin
from daemon.points import Point
from daemon.secrets import Secret


class CounterConfig(SourceConfig):
    per_run: int = 10
    every_s: float = 3600
    fail: bool = False
    fail_runs: int = 0  # the first N runs fail, the later ones succeed
    run_at_start: bool = True
    token: Secret | None = None


class CounterCollector(PolledCollector):
    def __init__(self, config: CounterConfig, ctx: CollectorContext) -> None:
        self.config = config
        self.ctx = ctx
        self.runs = 0

    def jobs(self) -> Sequence[Job]:
        every = timedelta(seconds=self.config.every_s)
        return [Job("count", self.run, every=every, run_at_start=self.config.run_at_start)]

    async def run(self) -> None:
        self.runs += 1
        if self.config.fail or self.runs <= self.config.fail_runs:
            raise RuntimeError("counter source told to fail")
        start = await self.ctx.checkpoints.get("next", 0)
        points = [
            Point("counter", {"source": "test"}, {"n": n}, 1_700_000_000_000_000_000 + n)
            for n in range(start, start + self.config.per_run)
        ]
        await self.ctx.emit.points(points, checkpoint={"next": start + self.config.per_run})
        self.ctx.log.info("counter_emitted", next=start + self.config.per_run)


PLUGIN = SourcePlugin(name="counter", config_model=CounterConfig, create=CounterCollector)
