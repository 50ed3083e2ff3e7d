"""The durable outbox: the boundary where a record counts as ingested.

Producers `submit()` encoded lines (optionally with a callback that writes checkpoints or
ledger rows in the same transaction). A committer task group-commits everything pending in
one SQLite transaction, so many small submissions cost one commit, and resolves their
futures once the commit is durable. The flusher reads committed chunks in id order, writes
them to the sink and deletes what the server acknowledged (`ack`), or moves lines the server
rejected to the dead-letter table with its reason.

Chunk bodies are joined on the event loop, before the transaction, and the latest committed
ones are kept in memory (`_Recent`, a few MB) until acknowledged: the flusher, which
normally reads right behind the commits, takes them from there instead of reading back from
SQLite what was just written. What is not there (a backlog beyond the budget, chunks left by
an earlier run) is read from the database, in the same order.

A size limit (`max_points`) bounds the disk: beyond it the oldest chunks are dropped, counted
in `points_dropped` and logged.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import structlog

from daemon.metrics import Counters
from daemon.state import StateDB

__all__ = ["Batch", "OnCommit", "Outbox"]

OnCommit = Callable[[sqlite3.Connection], None]

# Bytes of committed chunk bodies kept in memory for the flusher (see `_Recent`).
_RECENT_BYTES = 8 * 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    n INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    reason TEXT NOT NULL,
    line TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Batch:
    """Committed chunks read for one write: their ids, joined body and line count."""

    ids: tuple[int, ...]
    body: bytes
    lines: int

    @property
    def last_id(self) -> int:
        return self.ids[-1]


@dataclass
class _Pending:
    lines: list[str]
    on_commit: OnCommit | None
    future: asyncio.Future[None]


class _Recent:
    """Bodies of committed, not yet acknowledged chunks, by id (in commit order), within a
    byte budget. Every chunk in the table with an id above `disk_until` is here; one that
    did not fit the budget moves `disk_until` up to its id, so older ids are read from disk."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._size = 0
        self._chunks: dict[int, tuple[int, bytes]] = {}
        self.disk_until = 0

    def add(self, chunk_id: int, lines: int, body: bytes) -> None:
        if self._size + len(body) > self._budget:
            self.disk_until = chunk_id
            return
        self._chunks[chunk_id] = (lines, body)
        self._size += len(body)

    def discard(self, ids: Iterable[int]) -> None:
        for chunk_id in ids:
            chunk = self._chunks.pop(chunk_id, None)
            if chunk is not None:
                self._size -= len(chunk[1])

    def discard_through(self, last_id: int) -> None:
        self.discard([chunk_id for chunk_id in self._chunks if chunk_id <= last_id])

    def batch(self, max_lines: int, after_id: int) -> Batch | None:
        """What `read_batch` reads from the table, when `after_id >= disk_until`."""
        return _first_chunks(
            (
                (chunk_id, count, body)
                for chunk_id, (count, body) in self._chunks.items()
                if chunk_id > after_id  # not being written, nor waiting for its deletion
            ),
            max_lines,
        )


def _first_chunks(chunks: Iterable[tuple[int, int, bytes]], max_lines: int) -> Batch | None:
    """The batch of the first (id, lines, body) chunks, up to `max_lines` lines (at least one
    chunk), or None when there are none."""
    ids, bodies, total = [], [], 0
    for chunk_id, count, body in chunks:
        if ids and total + count > max_lines:
            break
        ids.append(chunk_id)
        bodies.append(body)
        total += count
    return Batch(tuple(ids), b"\n".join(bodies), total) if ids else None


class Outbox:
    """Group-committing SQLite outbox with a size limit and a dead-letter table."""

    def __init__(
        self,
        db: StateDB,
        counters: Counters,
        *,
        chunk_lines: int = 10_000,
        max_points: int = 50_000_000,
        recent_bytes: int = _RECENT_BYTES,
    ) -> None:
        self._db = db
        self._counters = counters
        self._chunk_lines = chunk_lines
        self._max_points = max_points
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._committer: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("chargeflux.outbox")
        self.committed = asyncio.Event()
        self.depth = 0
        self._fill = 0  # lines in the last, incomplete run of chunk_lines (see _tiles)
        self._recent = _Recent(recent_bytes)

    async def start(self) -> None:
        def init(conn: sqlite3.Connection) -> tuple[int, int]:
            conn.executescript(_SCHEMA)
            return conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(MAX(id), 0) FROM outbox"
            ).fetchone()

        self.depth, self._recent.disk_until = await self._db.run(init)
        self._fill = self.depth % self._chunk_lines
        self._counters.set("outbox_depth", self.depth)
        self._committer = asyncio.create_task(self._commit_loop(), name="outbox-committer")

    def submit(
        self, lines: Sequence[str], on_commit: OnCommit | None = None
    ) -> asyncio.Future[None]:
        """Queue lines for the next group commit; the future resolves once they are durable."""
        if self._closing:
            raise RuntimeError("outbox is closed")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(list(lines), on_commit, future))
        self._counters.inc("points_in", len(lines))
        self._wake.set()
        return future

    async def put(self, lines: Sequence[str], on_commit: OnCommit | None = None) -> None:
        """Commit lines durably (with `on_commit` in the same transaction)."""
        await self.submit(lines, on_commit)

    async def close(self) -> None:
        """Commit what is pending and stop the committer."""
        self._closing = True
        self._wake.set()
        if self._committer is not None:
            await self._committer

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, []
            if pending:
                await self._commit(pending)
            elif self._closing:
                return

    async def _commit(self, pending: list[_Pending]) -> None:
        lines = [line for item in pending for line in item.lines]
        callbacks = [item.on_commit for item in pending if item.on_commit is not None]
        fill = self._fill
        chunks = [
            (len(chunk), "\n".join(chunk).encode())
            for chunk in _tiles(lines, self._chunk_lines, fill)
        ]
        try:
            ids, dropped, dropped_through = await self._db.transaction(
                lambda conn: self._write(conn, chunks, len(lines), callbacks)
            )
        except Exception as exc:
            if len(pending) > 1:  # one producer's failing callback must not fail the others
                for item in pending:
                    await self._commit([item])
                return
            self._counters.inc("errors")
            self._log.error("outbox_commit_failed", error=str(exc), lines=len(lines))
            for item in pending:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for chunk_id, (count, body) in zip(ids, chunks, strict=True):
            self._recent.add(chunk_id, count, body)
        if dropped_through is not None:
            self._recent.discard_through(dropped_through)
        self.depth += len(lines) - dropped
        self._fill = (fill + len(lines)) % self._chunk_lines
        self._counters.set("outbox_depth", self.depth)
        if dropped:
            self._counters.inc("points_dropped", dropped)
            self._log.warning(
                "outbox_full_dropped_oldest", dropped=dropped, max_points=self._max_points
            )
        for item in pending:
            if not item.future.done():
                item.future.set_result(None)
        self.committed.set()

    def _write(
        self,
        conn: sqlite3.Connection,
        chunks: list[tuple[int, bytes]],
        lines: int,
        callbacks: list[OnCommit],
    ) -> tuple[list[int], int, int | None]:
        """Insert the chunks and run the callbacks: the chunks' ids, the lines dropped to
        stay within `max_points` and the last id dropped."""
        insert = "INSERT INTO outbox (n, body) VALUES (?, ?)"
        ids = [conn.execute(insert, chunk).lastrowid or 0 for chunk in chunks]
        for callback in callbacks:
            callback(conn)
        excess = self.depth + lines - self._max_points
        dropped, dropped_through = self._drop_oldest(conn, excess) if excess > 0 else (0, None)
        return ids, dropped, dropped_through

    @staticmethod
    def _drop_oldest(conn: sqlite3.Connection, excess: int) -> tuple[int, int | None]:
        dropped, last_id = 0, None
        for row_id, count in conn.execute("SELECT id, n FROM outbox ORDER BY id"):
            if dropped >= excess:
                break
            dropped += count
            last_id = row_id
        if last_id is not None:
            conn.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        return dropped, last_id

    async def read_batch(self, max_lines: int, after_id: int = 0) -> Batch | None:
        """The oldest committed chunks after `after_id`, up to `max_lines` lines (at least one
        chunk), or None when the outbox holds nothing more: from the recent chunks in memory
        when every chunk after `after_id` is there, else from the database."""
        if after_id >= self._recent.disk_until:
            return self._recent.batch(max_lines, after_id)

        def read(conn: sqlite3.Connection) -> Batch | None:
            cursor = conn.execute(
                "SELECT id, n, body FROM outbox WHERE id > ? ORDER BY id", (after_id,)
            )
            try:
                return _first_chunks(cursor, max_lines)
            finally:
                cursor.close()

        return await self._db.read(read)

    async def ack(self, ids: Sequence[int], dead: Sequence[tuple[str, str]] = ()) -> None:
        """Delete the acknowledged chunks `ids` (a batch's); `dead` (line, reason) pairs go to
        the dead letters."""

        def delete(conn: sqlite3.Connection) -> int:
            placeholders = ",".join("?" * len(ids))
            rows = conn.execute(
                f"DELETE FROM outbox WHERE id IN ({placeholders}) RETURNING n",  # noqa: S608
                ids,
            ).fetchall()
            self._insert_dead(conn, dead)
            return sum(count for (count,) in rows)

        gone = await self._db.transaction(delete)
        self._recent.discard(ids)
        self.depth -= gone
        self._counters.set("outbox_depth", self.depth)

    async def dead_letter(self, dead: Sequence[tuple[str, str]]) -> None:
        """Record lines (or unencodable records) that will never be written, with the reason."""
        if dead:
            await self._db.transaction(lambda conn: self._insert_dead(conn, dead))

    @staticmethod
    def _insert_dead(conn: sqlite3.Connection, dead: Sequence[tuple[str, str]]) -> None:
        now = time.time()
        conn.executemany(
            "INSERT INTO dead_letter (created_at, reason, line) VALUES (?, ?, ?)",
            [(now, reason, line) for line, reason in dead],
        )

    async def dead_letters(self, limit: int = 100) -> list[tuple[str, str]]:
        return await self._db.run(
            lambda conn: conn.execute(
                "SELECT reason, line FROM dead_letter ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        )


def _tiles(lines: list[str], step: int, fill: int) -> Iterator[list[str]]:
    """Cut `lines` into chunks of at most `step` lines, the first one completing the run of
    `step` lines that earlier commits left incomplete (`fill` lines long).

    Group commits come in any size; cut this way, consecutive chunks add up to whole runs of
    `step` lines, so the flusher's batches (whole chunks, up to `step` lines) come out full
    instead of, say, two chunks of 2600 lines that cannot share a batch of 5000.
    """
    start = 0
    if fill and lines:
        start = step - fill
        yield lines[:start]
    for index in range(start, len(lines), step):
        yield lines[index : index + step]
