"""The embedded store: points in a SQLite file in the state directory.

The default sink when no InfluxDB is configured, so the daemon runs anywhere. Like InfluxDB
it keeps one point per (series, time): a second write of the same series and timestamp
replaces the first, which makes outbox replays idempotent here too.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from daemon.errors import SinkRejected, SinkRetryable
from daemon.points import Point, parse, split_lines

__all__ = ["EmbeddedStore", "series_and_time"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    series TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    measurement TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (series, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_measurement ON points (measurement, time_ns);
"""


def series_and_time(line: str) -> tuple[str, str, int]:
    """(series key, measurement, timestamp) of an encoded line."""
    index = 0
    while True:
        char = line[index]
        if char == "\\":
            index += 2
        elif char == " ":
            break
        else:
            index += 1
    series = line[:index]
    cut = 0
    while cut < len(series):
        if series[cut] == "\\":
            cut += 2
        elif series[cut] == ",":
            break
        else:
            cut += 1
    measurement = series[:cut].replace("\\,", ",").replace("\\ ", " ")
    return series, measurement, int(line.rsplit(" ", 1)[1])


class EmbeddedStore:
    """SQLite point store with InfluxDB's overwrite semantics."""

    name = "embedded"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        if self._conn is None:
            self._conn = await self._run(self._connect)

    def _write(self, body: bytes) -> None:
        assert self._conn is not None
        rows = []
        try:
            for line in split_lines(body.decode()):
                series, measurement, time_ns = series_and_time(line)
                rows.append((series, time_ns, measurement, line))
        except (ValueError, IndexError) as exc:  # the flusher bisects to the bad line
            raise SinkRejected(f"unreadable line protocol: {exc}") from None
        try:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR REPLACE INTO points (series, time_ns, measurement, line) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:  # locked, disk full: keep the data, try again later
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise SinkRetryable(f"embedded store: {exc}") from exc

    async def write(self, body: bytes, lines: int) -> None:
        await self._run(self._write, body)

    def _query(self, measurement: str, since_ns: int | None, limit: int | None) -> list[str]:
        assert self._conn is not None
        rows = self._conn.execute(
            "SELECT line FROM ("
            " SELECT line, time_ns FROM points WHERE measurement = ? AND time_ns >= ?"
            " ORDER BY time_ns DESC LIMIT ?"
            ") ORDER BY time_ns",
            (measurement, since_ns or -(2**63), -1 if limit is None else limit),
        ).fetchall()
        return [row[0] for row in rows]

    async def query(
        self, measurement: str, since_ns: int | None = None, limit: int | None = None
    ) -> list[Point]:
        await self.open()
        return [parse(line) for line in await self._run(self._query, measurement, since_ns, limit)]

    def _counts(self) -> dict[str, int]:
        assert self._conn is not None
        rows = self._conn.execute(
            "SELECT measurement, COUNT(*) FROM points GROUP BY measurement ORDER BY measurement"
        )
        return dict(rows.fetchall())

    async def counts(self) -> dict[str, int]:
        """Points per measurement."""
        await self.open()
        return await self._run(self._counts)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)
