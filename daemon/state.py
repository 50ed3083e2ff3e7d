"""The state database: one SQLite file (WAL) holding the outbox, checkpoints and ledgers.

Everything durable lives in one file so that a collector's points and its checkpoint commit
in one transaction: a restart resumes exactly where the last commit left off. Writes and
reads that must follow them go through one worker thread (`StateDB.run`), so the event loop
never blocks on disk and a connection is never shared between threads. Reads of committed
data that need not wait behind a long write (the flusher fetching the next outbox batch) take
a second connection on a thread of its own (`StateDB.read`): in WAL mode a reader sees the
last commit while the writer works.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = ["Checkpoints", "StateDB", "in_transaction"]

T = TypeVar("T")

_PAGE_SIZE = 16384
# The writer's page cache (KiB, as SQLite's negative cache_size): the ledger's indexes and the
# outbox's recent pages stay in memory instead of being read back at every lookup (SQLite's
# default is 2 MB). The reader only reads outbox chunks once; it keeps the default.
_CACHE_KIB = 65536

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    collector TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (collector, key)
) WITHOUT ROWID;
"""


class StateDB:
    """The SQLite state file: a writer thread, and a reader thread for committed data."""

    def __init__(self, path: Path, synchronous: Literal["off", "normal", "full"] = "full") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="statedb")
        self._conn = self._executor.submit(self._connect, synchronous).result()
        self._reader_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="statedb-r")
        self._reader = self._reader_executor.submit(self._connect_reader).result()

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Outbox chunks are blobs of hundreds of kB spread over overflow pages: 16 kB pages
        # write, read and free them in a quarter of the page operations (and syscalls) that
        # 4 kB pages take. Only a new file takes it; an existing one keeps its page size.
        conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        # Debian and others build SQLite with secure_delete on: every acknowledged outbox
        # chunk would be overwritten with zeros (as much I/O again as writing it). FAST only
        # zeroes what costs no extra I/O; the outbox holds measurements, never credentials.
        conn.execute("PRAGMA secure_delete=FAST")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        # Temporary tables (the ledger's session id index, rebuilt at start) live in memory.
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.executescript(_SCHEMA)
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the state thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._conn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the reader thread: it sees what is committed, without
        waiting for the writer thread's queue (nor seeing what is queued there)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._reader_executor, fn, self._reader
        )

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the state thread and wait (start-up and CLI only)."""
        return self._executor.submit(fn, self._conn).result()

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` inside BEGIN IMMEDIATE … COMMIT (rolled back if it raises)."""
        return await self.run(lambda conn: in_transaction(conn, fn))

    def close(self) -> None:
        self._reader_executor.submit(self._reader.close).result()
        self._reader_executor.shutdown(wait=True)
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown(wait=True)


def in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(conn)` inside BEGIN IMMEDIATE … COMMIT, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Checkpoints:
    """A collector's durable key → JSON value map (where to resume)."""

    def __init__(self, db: StateDB, collector: str) -> None:
        self._db = db
        self._collector = collector

    async def get(self, key: str, default: Any = None) -> Any:
        row = await self._db.run(
            lambda conn: conn.execute(
                "SELECT value FROM checkpoints WHERE collector = ? AND key = ?",
                (self._collector, key),
            ).fetchone()
        )
        return default if row is None else json.loads(row[0])

    async def items(self) -> dict[str, Any]:
        rows = await self._db.run(
            lambda conn: conn.execute(
                "SELECT key, value FROM checkpoints WHERE collector = ?", (self._collector,)
            ).fetchall()
        )
        return {key: json.loads(value) for key, value in rows}

    async def set(self, key: str, value: Any) -> None:
        await self._db.run(lambda conn: self.write(conn, key, value))

    def write(self, conn: sqlite3.Connection, key: str, value: Any) -> None:
        """Write inside a caller's transaction (used by the outbox's atomic commits)."""
        conn.execute(
            "INSERT INTO checkpoints (collector, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (collector, key) DO UPDATE SET value = excluded.value",
            (self._collector, key, json.dumps(value, sort_keys=True)),
        )
