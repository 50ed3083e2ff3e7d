"""The pipeline below the collectors: state DB, outbox, session judge, sink and flusher.

`Pipeline` owns the durable parts and outlives config reloads: collectors come and go, the
outbox and what it holds stay. `emitter_for()` hands a collector its way in.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from daemon.checks.engine import build_session_judge
from daemon.config import Config
from daemon.emitter import Emitter
from daemon.flusher import Flusher
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.sessions import SessionJudge
from daemon.sinks import Sink, build_sink
from daemon.state import Checkpoints, StateDB

__all__ = ["Pipeline"]


class Pipeline:
    """Outbox → sink, with the state database and the session judge."""

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.state_dir = Path(config.state_dir)
        self.db = StateDB(self.state_dir / "state.db", config.outbox.synchronous)
        self.outbox = Outbox(
            self.db,
            self.metrics.component("outbox"),
            chunk_lines=config.outbox.batch_size,
            max_points=config.outbox.max_points,
        )
        self.sink: Sink = build_sink(config.sink, self.state_dir, self.metrics.component("sink"))
        self.flusher = Flusher(
            self.outbox, self.sink, config.outbox, self.metrics.component("sink")
        )
        self.judge: SessionJudge = build_session_judge(config.checks.sessions, self.db)
        self._flush_task: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("chargeflux.pipeline")

    async def start(self) -> None:
        await self.outbox.start()
        await self.judge.load()
        await self.sink.open()
        self._flush_task = asyncio.create_task(self.flusher.run(), name="flusher")
        self._log.info(
            "pipeline_started",
            sink=self.sink.name,
            state_dir=str(self.state_dir),
            outbox_depth=self.outbox.depth,
        )

    def checkpoints_for(self, source: str) -> Checkpoints:
        return Checkpoints(self.db, source)

    def emitter_for(self, source: str) -> Emitter:
        return Emitter(
            source,
            self.outbox,
            self.checkpoints_for(source),
            self.metrics.component(source),
            self.judge,
        )

    async def emit_metrics(self) -> None:
        """Commit one `chargeflux_internal` point per component."""
        await self.emitter_for("internal").points(self.metrics.points())

    async def apply_checks(self, config: Config) -> None:
        """Rebuild the session judge when a reload changed its thresholds (before new
        collectors get their emitters)."""
        if config.checks == self.config.checks:
            return
        judge = build_session_judge(config.checks.sessions, self.db)
        await judge.load()
        self.judge = judge
        self._log.info("session_rules_reloaded")

    async def replace_sink(self, config: Config) -> None:
        """Switch to the sink of a reloaded config when it changed; the outbox is kept."""
        if config.sink == self.config.sink:
            self.config = config
            return
        sink = build_sink(config.sink, self.state_dir, self.metrics.component("sink"))
        try:
            await sink.open()
        except BaseException:
            await sink.close()
            raise
        old, self.config = self.sink, config
        self.sink = sink
        self.flusher.replace_sink(sink)
        await old.close()
        self._log.info("sink_replaced", sink=sink.name)

    async def close(self, drain_timeout: float | None) -> bool:
        """Commit what is pending, drain within `drain_timeout`, close everything.
        True when nothing is left in the outbox."""
        await self.outbox.close()
        self.flusher.stop()
        if self._flush_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        drained = await self.flusher.drain(drain_timeout)
        if not drained:
            self._log.warning(
                "outbox_kept",
                points=self.outbox.depth,
                hint="kept on disk; written at next start",
            )
        await self.sink.close()
        self.db.close()
        return drained
