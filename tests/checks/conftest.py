"""Fixtures for the session engine tests: a real state database and a way to run batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daemon.checks.engine import SessionEngine, build_session_judge
from daemon.checks.rules import SessionRulesConfig
from daemon.points import Point, parse
from daemon.records import ChargingSession
from daemon.state import StateDB


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    state = StateDB(tmp_path / "state.db")
    yield state
    state.close()


@dataclass
class Runner:
    """Feeds batches to an engine and commits each batch's ledger writes, like the emitter."""

    db: StateDB
    config: SessionRulesConfig
    engine: SessionEngine | None = None
    points: list[Point] = field(default_factory=list)

    async def start(self) -> SessionEngine:
        self.engine = build_session_judge(self.config, self.db)
        await self.engine.load()
        return self.engine

    async def feed(
        self, sessions: Sequence[ChargingSession], batch: int = 500, source: str = "qualicharge"
    ) -> list[Point]:
        assert self.engine is not None
        made: list[Point] = []
        for first in range(0, len(sessions), batch):
            judged = await self.engine.judge(source, sessions[first : first + batch])
            if judged.on_commit is not None:
                await self.db.transaction(judged.on_commit)
            made.extend(judged.points)
            made.extend(parse(line) for line in judged.lines)
        self.points.extend(made)
        return made

    async def ledger(self, source: str = "qualicharge") -> dict[str, dict[str, Any]]:
        def read(conn: Any) -> list[Any]:
            cursor = conn.execute("SELECT * FROM session_ledger WHERE source = ?", (source,))
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return {row["session_id"]: row for row in await self.db.run(read)}

    def final_flags(self, source: str = "qualicharge") -> dict[str, int]:
        """Each session's current rule bits in the engine's memory."""
        assert self.engine is not None
        return self.engine.flags(source)


@pytest.fixture
async def runner(db: StateDB) -> Runner:
    made = Runner(db, SessionRulesConfig())
    await made.start()
    return made


def latest(points: Sequence[Point], measurement: str = "charging_session") -> dict[Any, Point]:
    """The last point written per (series, time): what InfluxDB keeps."""
    kept: dict[Any, Point] = {}
    for point in points:
        if point.measurement == measurement:
            kept[(tuple(sorted(point.tags.items())), point.time_ns)] = point
    return kept
