"""A real state database, outbox, session engine and emitter around a QualiCharge collector.

Used by the tests and by the child process of the kill -9 test (`python -m
tests.qualicharge.harness STATE_DIR CONFIG_JSON`), which prints `PAGE n` after each page it
committed and `DONE count` at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from collectors.qualicharge.collector import QualiChargeCollector
from collectors.qualicharge.config import QualiChargeConfig
from daemon.checks.engine import SessionEngine, build_session_judge
from daemon.checks.rules import SessionRulesConfig
from daemon.collector import CollectorContext
from daemon.emitter import Emitter
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import Point, parse, split_lines
from daemon.records import Sessions
from daemon.state import Checkpoints, StateDB


class Harness:
    """What the runtime gives a collector, built from real parts."""

    def __init__(self, state_dir: Path, http: aiohttp.ClientSession) -> None:
        self.state_dir = state_dir
        self.http = http
        self.db = StateDB(state_dir / "state.db")
        self.counters = Counters("qualicharge")
        self.outbox = Outbox(self.db, Counters("outbox"))
        self.checkpoints = Checkpoints(self.db, "qualicharge")
        self.judge: SessionEngine = build_session_judge(SessionRulesConfig(), self.db)
        self.emitter = Emitter(
            "qualicharge", self.outbox, self.checkpoints, self.counters, self.judge
        )
        self.ctx = CollectorContext(
            name="qualicharge",
            emit=self.emitter,
            checkpoints=self.checkpoints,
            http=http,
            counters=self.counters,
            log=structlog.get_logger("test.qualicharge"),
            state_dir=state_dir,
        )

    async def start(self) -> Harness:
        await self.judge.load()
        await self.outbox.start()
        return self

    def collector(self, config: QualiChargeConfig, **kwargs: Any) -> QualiChargeCollector:
        return QualiChargeCollector(config, self.ctx, **kwargs)

    async def committed(self) -> list[Point]:
        """Every point committed to the outbox so far."""
        batch = await self.outbox.read_batch(10_000_000)
        if batch is None:
            return []
        return [parse(line) for line in split_lines(batch.body.decode())]

    async def ledger(self) -> dict[str, dict[str, Any]]:
        def read(conn: Any) -> list[Any]:
            cursor = conn.execute("SELECT * FROM session_ledger")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return {row["session_id"]: row for row in await self.db.run(read)}

    async def close(self) -> None:
        await self.outbox.close()
        self.db.close()


class _Reporting(Emitter):
    """Prints `PAGE n` once each page's commit is durable."""

    pages = 0

    async def submit_sessions(self, sessions: Sessions, **kwargs: Any) -> asyncio.Future[None]:
        committed = await super().submit_sessions(sessions, **kwargs)

        def report(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                self.pages += 1
                print(f"PAGE {self.pages}", flush=True)

        committed.add_done_callback(report)
        return committed


async def _child(state_dir: Path, raw: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http:
        harness = await Harness(state_dir, http).start()
        harness.ctx.emit = _Reporting(
            "qualicharge", harness.outbox, harness.checkpoints, harness.counters, harness.judge
        )
        collector = harness.collector(QualiChargeConfig.model_validate(raw))
        count = await collector.poll_sessions()
        await collector.close()
        await harness.close()
        print(f"DONE {count}", flush=True)


if __name__ == "__main__":
    asyncio.run(_child(Path(sys.argv[1]), json.loads(sys.argv[2])))
