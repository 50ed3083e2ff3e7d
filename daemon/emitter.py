"""The emitter: how a collector hands records to the engine.

`points()` encodes points to line protocol and commits them to the outbox, optionally with a
checkpoint in the same transaction, and returns once they are durable. `submit_points()` is
the non-blocking variant for push sources that must not wait for a commit per message.
`sessions()` passes sessions through the session judge first (`submit_sessions()` without
waiting for the commit). A point that cannot be encoded
(NaN, bad name), or a session record a reader refused (`rejected`), is logged with its
reason and kept in the dead-letter table; the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from daemon.encoder import Encoder
from daemon.metrics import Counters
from daemon.outbox import OnCommit, Outbox
from daemon.points import Point
from daemon.records import Sessions
from daemon.sessions import SessionJudge
from daemon.state import Checkpoints

__all__ = ["Emitter"]


class Emitter:
    """One collector's way into the outbox."""

    def __init__(
        self,
        source: str,
        outbox: Outbox,
        checkpoints: Checkpoints,
        counters: Counters,
        judge: SessionJudge,
    ) -> None:
        self._source = source
        self._outbox = outbox
        self._checkpoints = checkpoints
        self._counters = counters
        self._judge = judge
        self._log = structlog.get_logger("chargeflux.emitter").bind(source=source)
        self._encoder = Encoder()

    def _encode(self, points: Iterable[Point]) -> tuple[list[str], list[tuple[str, str]]]:
        lines, refused = self._encoder.encode_all(points)
        bad = [(repr(point), reason) for point, reason in refused]
        self._refused("point_rejected", bad)
        return lines, bad

    def _refused(self, event: str, bad: Sequence[tuple[str, str]]) -> None:
        """Count and log (what, reason) pairs about to be dead-lettered."""
        if bad:
            self._counters.inc("errors", len(bad))
            self._log.error(event, count=len(bad), reason=bad[0][1], sample=bad[0][0])

    def _on_commit(
        self,
        checkpoint: Mapping[str, Any] | None,
        bad: list[tuple[str, str]],
        extra: OnCommit | None = None,
    ) -> OnCommit | None:
        if not checkpoint and not bad and extra is None:
            return None

        def write(conn: sqlite3.Connection) -> None:
            if extra is not None:
                extra(conn)
            for key, value in (checkpoint or {}).items():
                self._checkpoints.write(conn, key, value)
            if bad:
                Outbox._insert_dead(conn, bad)

        return write

    async def points(
        self, points: Iterable[Point], *, checkpoint: Mapping[str, Any] | None = None
    ) -> None:
        """Commit `points` (and `checkpoint` keys) durably; returns once committed."""
        lines, bad = self._encode(points)
        await self._outbox.put(lines, self._on_commit(checkpoint, bad))

    def submit_points(self, points: Iterable[Point]) -> asyncio.Future[None]:
        """Queue points for the next group commit without waiting for it."""
        lines, bad = self._encode(points)
        return self._outbox.submit(lines, self._on_commit(None, bad))

    async def sessions(
        self,
        sessions: Sessions,
        *,
        checkpoint: Mapping[str, Any] | None = None,
        points: Sequence[Point] = (),
        rejected: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Judge `sessions`, then commit their points, ledger rows and `checkpoint` at once
        (with `rejected` (what, reason) records the reader refused, dead-lettered)."""
        await (
            await self.submit_sessions(
                sessions, checkpoint=checkpoint, points=points, rejected=rejected
            )
        )

    async def submit_sessions(
        self,
        sessions: Sessions,
        *,
        checkpoint: Mapping[str, Any] | None = None,
        points: Sequence[Point] = (),
        rejected: Sequence[tuple[str, str]] = (),
    ) -> asyncio.Future[None]:
        """Judge `sessions` and queue their commit; the future resolves once it is durable.
        A reader can judge its next page while this one commits (commits keep their order,
        so checkpoints never run ahead of the data)."""
        judged = await self._judge.judge(self._source, sessions)
        lines, bad = self._encode([*judged.points, *points])
        self._refused("session_rejected", rejected)
        bad += rejected
        return self._outbox.submit(
            [*judged.lines, *lines], self._on_commit(checkpoint, bad, judged.on_commit)
        )
