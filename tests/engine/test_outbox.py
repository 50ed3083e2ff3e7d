"""The durable outbox: group commit, atomic checkpoints, size limit, restart."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.emitter import Emitter
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import Point
from daemon.sessions import AcceptAll
from daemon.state import Checkpoints, StateDB


def lines(start: int, count: int) -> list[str]:
    return [f"m n={n}i {n}" for n in range(start, start + count)]


def committed_lines(path: Path) -> list[str]:
    """What another process would see in the outbox right now."""
    with sqlite3.connect(path) as conn:
        bodies = conn.execute("SELECT body FROM outbox ORDER BY id").fetchall()
    return [line for (body,) in bodies for line in body.decode().split("\n")]


class WriterHold:
    """A commit callback that holds the state thread inside its transaction until released."""

    def __init__(self) -> None:
        self.inside, self.release = threading.Event(), threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.inside.set()
        self.release.wait(10)

    async def entered(self) -> bool:
        return await asyncio.to_thread(self.inside.wait, 10)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[StateDB]:
    state = StateDB(tmp_path / "state.db")
    yield state
    state.close()


@pytest.fixture
async def outbox(db: StateDB) -> AsyncIterator[Outbox]:
    box = Outbox(db, Counters("outbox"), chunk_lines=10)
    await box.start()
    yield box
    await box.close()


async def test_group_commit_resolves_futures_only_after_commit(db: StateDB, outbox: Outbox) -> None:
    """Submissions queued together commit in one transaction; none resolves before COMMIT."""
    hold = WriterHold()
    first = outbox.submit(lines(0, 3), hold)
    second = outbox.submit(lines(3, 2))
    assert await hold.entered()
    assert not first.done() and not second.done()
    assert committed_lines(db.path) == []
    hold.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert committed_lines(db.path) == lines(0, 5)
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT COUNT(*), SUM(n) FROM outbox").fetchone() == (1, 5)
    assert outbox.depth == 5


async def test_points_and_checkpoint_commit_together_or_not_at_all(
    db: StateDB, outbox: Outbox
) -> None:
    """A failing on_commit callback rolls back its points and the checkpoint it wrote."""
    checkpoints = Checkpoints(db, "counter")

    def checkpoint_then_fail(conn: sqlite3.Connection) -> None:
        checkpoints.write(conn, "next", 3)
        raise RuntimeError("ledger write failed")

    with pytest.raises(RuntimeError, match="ledger write failed"):
        await outbox.put(lines(0, 3), checkpoint_then_fail)
    assert committed_lines(db.path) == []
    assert await checkpoints.get("next") is None
    assert outbox.depth == 0

    await outbox.put(lines(0, 3), lambda conn: checkpoints.write(conn, "next", 3))
    assert committed_lines(db.path) == lines(0, 3)
    assert await checkpoints.get("next") == 3


async def test_a_failing_callback_fails_only_its_own_submission(
    db: StateDB, outbox: Outbox
) -> None:
    """Another producer's points in the same group commit are still committed."""
    checkpoints = Checkpoints(db, "good")

    def fail(conn: sqlite3.Connection) -> None:
        raise TypeError("checkpoint value is not JSON")

    good = outbox.submit(lines(0, 4), lambda conn: checkpoints.write(conn, "next", 4))
    bad = outbox.submit(lines(100, 4), fail)
    also_good = outbox.submit(lines(4, 2))
    await asyncio.wait_for(good, 10)
    await asyncio.wait_for(also_good, 10)
    with pytest.raises(TypeError):
        await bad
    assert committed_lines(db.path) == lines(0, 6)
    assert await checkpoints.get("next") == 4
    assert outbox.depth == 6


async def test_size_limit_drops_the_oldest_counted_and_logged(db: StateDB) -> None:
    """Beyond max_points the oldest chunks go, counted in points_dropped and logged."""
    counters = Counters("outbox")
    box = Outbox(db, counters, chunk_lines=10, max_points=100)
    await box.start()
    try:
        await box.put(lines(0, 60))
        with capture_logs() as logs:
            await box.put(lines(60, 60))
        assert committed_lines(db.path) == lines(20, 100)
        assert box.depth == 100
        assert counters["points_dropped"] == 20
        assert counters["outbox_depth"] == 100
        warning = next(e for e in logs if e["event"] == "outbox_full_dropped_oldest")
        assert warning["dropped"] == 20 and warning["log_level"] == "warning"
    finally:
        await box.close()


async def test_batches_are_read_while_a_long_commit_holds_the_writer(
    db: StateDB, outbox: Outbox
) -> None:
    """The flusher's reads never queue behind a commit: a batch committed earlier is read
    (and only what is committed) while the writer thread is inside a long transaction."""
    await outbox.put(lines(0, 10))
    hold = WriterHold()
    held = outbox.submit(lines(10, 5), hold)
    try:
        assert await hold.entered()
        batch = await asyncio.wait_for(outbox.read_batch(100), 5)
        assert batch is not None and batch.lines == 10
        assert batch.body.decode().split("\n") == lines(0, 10)
        assert not held.done()
    finally:
        hold.release.set()
    await held
    after = await outbox.read_batch(100, after_id=batch.last_id)
    assert after is not None and after.body.decode().split("\n") == lines(10, 5)


async def test_depth_is_restored_after_reopening(tmp_path: Path) -> None:
    """A restarted daemon knows how many points wait in the outbox and reads them in order."""
    db = StateDB(tmp_path / "state.db")
    box = Outbox(db, Counters("outbox"), chunk_lines=10)
    await box.start()
    await box.put(lines(0, 25))
    batch = await box.read_batch(10)
    assert batch is not None
    await box.ack(batch.ids, dead=[(lines(0, 1)[0], "HTTP 400: bad")])
    await box.close()
    db.close()

    db = StateDB(tmp_path / "state.db")
    counters = Counters("outbox")
    box = Outbox(db, counters, chunk_lines=10)
    await box.start()
    try:
        assert box.depth == 15
        assert counters["outbox_depth"] == 15
        batch = await box.read_batch(1000)
        assert batch is not None and batch.lines == 15
        assert batch.body.decode().split("\n") == lines(10, 15)
        assert await box.dead_letters() == [("HTTP 400: bad", lines(0, 1)[0])]
    finally:
        await box.close()
        db.close()


async def test_read_batch_takes_whole_chunks_up_to_the_limit(outbox: Outbox) -> None:
    """A batch holds whole chunks within max_lines, but always at least one chunk."""
    await outbox.put(lines(0, 30))
    batch = await outbox.read_batch(25)
    assert batch is not None and batch.lines == 20 and len(batch.ids) == 2
    small = await outbox.read_batch(3)
    assert small is not None and small.lines == 10
    rest = await outbox.read_batch(25, after_id=batch.last_id)
    assert rest is not None and rest.body.decode().split("\n") == lines(20, 10)
    assert await outbox.read_batch(25, after_id=rest.last_id) is None


async def test_emitter_dead_letters_unencodable_points_and_commits_the_rest(
    db: StateDB, outbox: Outbox
) -> None:
    """A NaN point goes to the dead letters with its reason; the others and the checkpoint
    are committed."""
    counters = Counters("counter")
    checkpoints = Checkpoints(db, "counter")
    emitter = Emitter("counter", outbox, checkpoints, counters, AcceptAll())
    points = [
        Point("m", {}, {"n": 1}, 1),
        Point("m", {}, {"x": float("nan")}, 2),
        Point("m", {}, {"n": 3}, 3),
    ]
    await emitter.points(points, checkpoint={"next": 4})
    assert committed_lines(db.path) == ["m n=1i 1", "m n=3i 3"]
    assert await checkpoints.get("next") == 4
    [(reason, line)] = await outbox.dead_letters()
    assert "NaN" in reason and "nan" in line
    assert counters["errors"] == 1


async def test_flusher_batches_small_commits_until_the_flush_interval(tmp_path: Path) -> None:
    """Commits smaller than a batch are written together once the flush interval passes,
    not one request per commit."""
    from daemon.config import OutboxConfig
    from daemon.flusher import Flusher

    class CountingSink:
        name = "counting"

        def __init__(self) -> None:
            self.requests: list[int] = []
            self.all_written = asyncio.Event()

        async def write(self, body: bytes, lines: int) -> None:
            self.requests.append(lines)
            if sum(self.requests) == 20:
                self.all_written.set()

    db = StateDB(tmp_path / "state.db")
    outbox = Outbox(db, Counters("outbox"), chunk_lines=1000)
    await outbox.start()
    sink = CountingSink()
    flusher = Flusher(
        outbox, sink, OutboxConfig(batch_size=1000, flush_interval_s=0.3), Counters("sink")
    )
    task = asyncio.create_task(flusher.run())
    try:
        for n in range(20):
            await outbox.put([f"m v={n} {n}"])
        async with asyncio.timeout(5):
            await sink.all_written.wait()
    finally:
        flusher.stop()
        await task
        await outbox.close()
        db.close()
    assert sum(sink.requests) == 20
    assert len(sink.requests) <= 2, sink.requests


class _RecordingSink:
    """A sink that takes every write and keeps the bodies."""

    name = "recording"

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def open(self) -> None:
        return None

    async def write(self, body: bytes, lines: int) -> None:
        self.bodies.append(body)

    async def query(self, *args: object, **kwargs: object) -> list[object]:
        return []

    async def close(self) -> None:
        return None


async def test_the_flusher_writes_on_while_deletions_wait_behind_a_long_commit(
    db: StateDB, outbox: Outbox
) -> None:
    """Written batches are deleted in the background: with the state thread held by a long
    commit, the flusher still writes every committed batch, in order; once the commit ends,
    every written batch is deleted and counted, and the outbox drains."""
    from daemon.config import OutboxConfig
    from daemon.flusher import Flusher

    counters = Counters("sink")
    sink = _RecordingSink()
    flusher = Flusher(outbox, sink, OutboxConfig(batch_size=10), counters)
    await outbox.put(lines(0, 100))
    hold = WriterHold()
    held = outbox.submit(lines(100, 10), hold)
    assert await hold.entered()
    flushing = asyncio.create_task(flusher.flush())
    try:
        for _ in range(500):  # until the 10 committed batches are written
            if len(sink.bodies) == 10:
                break
            await asyncio.sleep(0.01)
        assert len(sink.bodies) == 10
        assert not flushing.done() and outbox.depth == 100  # deletions wait for the writer
    finally:
        hold.release.set()
    assert await asyncio.wait_for(flushing, 10)
    await held
    assert await flusher.drain(10)
    assert [line for body in sink.bodies for line in body.decode().split("\n")] == lines(0, 110)
    assert outbox.depth == 0 and counters["points_written"] == 110
    assert committed_lines(db.path) == []


async def test_the_writer_keeps_its_pages_and_temporary_tables_in_memory(db: StateDB) -> None:
    """The writer's page cache holds 64 MB (SQLite's default is 2 MB, less than the ledger's
    indexes) and its temporary tables (the ledger's session id index) live in memory."""

    def settings(conn: sqlite3.Connection) -> tuple[int, int]:
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        return cache, conn.execute("PRAGMA temp_store").fetchone()[0]

    assert await db.run(settings) == (-65536, 2)  # KiB; 2 = MEMORY
