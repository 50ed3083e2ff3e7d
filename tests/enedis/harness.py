"""A small local runtime for the Enedis collector: state DB, outbox, emitter, context.

Used by the Enedis tests, the kill -9 child process and the benchmark, with the clock of the
caller's choice; points are read back from the outbox table and parsed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from collectors.enedis.collector import EnedisCollector
from collectors.enedis.config import EnedisConfig
from collectors.enedis.parsing import PARIS
from collectors.enedis.quota import Clock
from daemon.collector import CollectorContext
from daemon.emitter import Emitter
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import Point, parse, split_lines
from daemon.sessions import AcceptAll
from daemon.state import Checkpoints, StateDB

__all__ = ["NOW", "CountingEmitter", "Harness", "config"]

NOW = datetime(2026, 10, 20, 10, 0, tzinfo=PARIS).timestamp()
"""The simulated present of the tests: 20 October 2026, 10:00 in Paris."""


def config(url: str, prms: list[dict[str, Any]], **extra: Any) -> EnedisConfig:
    """A Data Connect config aimed at the simulator, with fast retries."""
    raw: dict[str, Any] = {
        "mode": "data_connect",
        "base_url": url,
        "client_id": "demo-client",
        "client_secret": "demo-secret",
        "retry_base_s": 0.01,
        "fetch_contract": False,
        "prms": prms,
    }
    raw.update(extra)
    return EnedisConfig.model_validate(raw)


class CountingEmitter(Emitter):
    """An emitter that counts its commits, lets tests wait for them, and can report them."""

    def __init__(
        self, *args: Any, report: Callable[[Mapping[str, Any]], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.commits = 0
        self.changed = asyncio.Condition()
        self._report = report

    async def points(
        self, points: Iterable[Point], *, checkpoint: Mapping[str, Any] | None = None
    ) -> None:
        await super().points(points, checkpoint=checkpoint)
        self.commits += 1
        if self._report is not None and checkpoint:
            self._report(checkpoint)
        async with self.changed:
            self.changed.notify_all()

    async def wait_commits(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.commits >= count)


class Harness:
    """State DB + outbox + emitter + checkpoints around one collector."""

    def __init__(
        self,
        state_dir: Path,
        http: aiohttp.ClientSession,
        clock: Clock,
        report: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.report = report
        self.http = http
        self.clock = clock
        self.counters = Counters("enedis")
        self.db: StateDB | None = None
        self.outbox: Outbox | None = None
        self.emitter: CountingEmitter | None = None
        self.checkpoints: Checkpoints | None = None

    async def start(self) -> Harness:
        self.db = StateDB(self.state_dir / "state.db")
        self.outbox = Outbox(self.db, Counters("outbox"))
        await self.outbox.start()
        self.checkpoints = Checkpoints(self.db, "enedis")
        self.emitter = CountingEmitter(
            "enedis", self.outbox, self.checkpoints, self.counters, AcceptAll(), report=self.report
        )
        return self

    def context(self) -> CollectorContext:
        assert self.emitter and self.checkpoints
        return CollectorContext(
            name="enedis",
            emit=self.emitter,
            checkpoints=self.checkpoints,
            http=self.http,
            counters=self.counters,
            log=structlog.get_logger("test.enedis"),
            state_dir=self.state_dir,
        )

    def collector(self, cfg: EnedisConfig) -> EnedisCollector:
        return EnedisCollector(cfg, self.context(), clock=self.clock)

    async def points(self, measurement: str | None = None) -> list[Point]:
        assert self.db is not None

        def read(conn: sqlite3.Connection) -> list[bytes]:
            return [row[0] for row in conn.execute("SELECT body FROM outbox ORDER BY id")]

        out: list[Point] = []
        for body in await self.db.run(read):
            for line in split_lines(body.decode()):
                point = parse(line)
                if measurement is None or point.measurement == measurement:
                    out.append(point)
        return out

    async def close(self) -> None:
        if self.outbox is not None:
            await self.outbox.close()
        if self.db is not None:
            self.db.close()
