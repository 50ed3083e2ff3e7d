"""Sinks and the flusher against real servers (InfluxDB 1.x, VictoriaMetrics), the embedded
store, and a small local /write imitation for the answers a real InfluxDB cannot give."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import InfluxV1SinkConfig, OutboxConfig
from daemon.flusher import Flusher
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.pipeline import Pipeline
from daemon.points import Point, encode
from daemon.sinks import EmbeddedStore
from daemon.sinks.influxdb_v1 import InfluxV1Sink
from daemon.state import StateDB
from tests.engine.probes import Answer, FakeInflux, LogWatch, drained, watch_logs
from tests.helpers import make_config
from tests.servers import InfluxServer, ServiceUnavailable

FAST = {"flush_interval_s": 0.05, "retry_initial_s": 0.05, "retry_max_s": 0.3}


def numbered(start: int, count: int, measurement: str = "counter") -> list[Point]:
    return [
        Point(measurement, {"source": "test"}, {"n": n}, 1_700_000_000_000_000_000 + n)
        for n in range(start, start + count)
    ]


def numbers(influx: Any, measurement: str = "counter") -> list[int]:
    return sorted(row["n"] for row in influx.query(f'SELECT "n" FROM "{measurement}"'))


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    yield from watch_logs()


@pytest.fixture
async def pipeline_for(state_dir: Path) -> AsyncIterator[Any]:
    """Factory of started pipelines on `state_dir`, closed (and drained briefly) afterwards."""
    started: list[Pipeline] = []

    async def start(sink: dict[str, Any], **outbox: Any) -> Pipeline:
        pipeline = Pipeline(make_config(state_dir, sink=sink, outbox={**FAST, **outbox}))
        await pipeline.start()
        started.append(pipeline)
        return pipeline

    yield start
    for pipeline in started:
        await pipeline.close(0.5)


async def test_field_type_conflict_is_bisected_into_the_dead_letters(
    state_dir: Path, influxdb: Any, logs: LogWatch
) -> None:
    """One line of the wrong type mid-batch is dead-lettered with InfluxDB's reason; the
    other 99 points are written."""
    db = StateDB(state_dir / "state.db")
    counters = Counters("sink")
    outbox = Outbox(db, Counters("outbox"), chunk_lines=1000)
    await outbox.start()
    sink = InfluxV1Sink(
        InfluxV1SinkConfig(type="influxdb", url=influxdb.url, database=influxdb.database), counters
    )
    await sink.open()
    flusher = Flusher(outbox, sink, OutboxConfig(batch_size=1000), counters)
    points = [Point("m", {"k": "a"}, {"v": float(n)}, 1_000 + n) for n in range(100)]
    points[57] = Point("m", {"k": "a"}, {"v": "not a number"}, 1_057)
    await outbox.put([encode(point) for point in points])
    try:
        assert await flusher.drain(30)
        [(reason, line)] = await outbox.dead_letters()
        assert line == encode(points[57])
        assert reason.startswith("HTTP 400: partial write: field type conflict")
        assert outbox.depth == 0
        assert counters["points_written"] == 99 and counters["points_dropped"] == 1
        logged = await logs.wait("point_dead_lettered")
        assert "field type conflict" in logged["reason"] and logged["level"] == "error"
        rows = influxdb.query('SELECT "v" FROM "m"')
        assert sorted(row["v"] for row in rows) == [n for n in range(100) if n != 57]
    finally:
        await outbox.close()
        await sink.close()
        db.close()


async def test_writes_survive_an_influxdb_restart(
    tmp_path: Path, state_dir: Path, pipeline_for: Any, logs: LogWatch
) -> None:
    """With InfluxDB stopped, writes are retried; after restart every point is there once."""
    server = InfluxServer(tmp_path / "influxd")
    try:
        await asyncio.to_thread(server.start)
    except ServiceUnavailable as exc:
        from tests.conftest import unavailable

        unavailable(str(exc))
    try:
        database = server.create_database()
        sink = {"type": "influxdb", "url": server.url, "database": database}
        pipeline = await pipeline_for(sink)
        empty = drained(pipeline.outbox)
        emit = pipeline.emitter_for("counter")
        await emit.points(numbered(0, 100))
        await asyncio.wait_for(empty.wait(), 10)

        await asyncio.to_thread(server.stop)
        empty.clear()
        await emit.points(numbered(100, 100))
        failing = await logs.wait("sink_write_failing")
        assert "unreachable" in failing["error"] and failing["outbox_depth"] == 100
        await logs.wait("sink_write_failing")  # logged once, then counted as retries
        assert len(logs.named("sink_write_failing")) == 1
        retries_while_down = pipeline.metrics.component("sink")["retries"]
        assert retries_while_down >= 1

        await asyncio.to_thread(server.start)
        await asyncio.wait_for(empty.wait(), 20)
        await logs.wait("sink_write_recovered")
        rows = server.rows('SELECT "n" FROM "counter"', database)
        assert sorted(row["n"] for row in rows) == list(range(200))
        assert pipeline.metrics.component("sink")["points_written"] == 200
    finally:
        await asyncio.to_thread(server.stop)


async def test_retry_after_is_honoured(state_dir: Path, logs: LogWatch) -> None:
    """After a 429 with Retry-After: 1 the same batch is resent 1 s later, not on backoff."""
    async with FakeInflux([Answer(429, "too many requests", {"Retry-After": "1"})]) as fake:
        db = StateDB(state_dir / "state.db")
        counters = Counters("sink")
        outbox = Outbox(db, Counters("outbox"))
        await outbox.start()
        sink = InfluxV1Sink(
            InfluxV1SinkConfig(type="influxdb", url=fake.url, database="d"), counters
        )
        await sink.open()
        # the backoff alone would wait 2.5-5 s: a resend at 1 s proves Retry-After was used
        config = OutboxConfig(retry_initial_s=5.0, retry_max_s=5.0)
        flusher = Flusher(outbox, sink, config, counters)
        try:
            await outbox.put([encode(point) for point in numbered(0, 10)])
            assert await flusher.drain(10)
            first, second = fake.requests
            assert 1.0 <= second.at - first.at < 2.0
            assert first.body == second.body
            assert counters["retries"] == 1 and counters["points_written"] == 10
            failing = logs.named("sink_write_failing")[0]
            assert failing["retry_in_s"] == 1.0 and "HTTP 429" in failing["error"]
            await logs.wait("sink_write_recovered")
        finally:
            await outbox.close()
            await sink.close()
            db.close()


async def test_401_stops_the_sink_and_keeps_the_data_until_a_working_sink(
    influxdb: Any, pipeline_for: Any, logs: LogWatch
) -> None:
    """A 401 blocks writing with a clear error and no retries; the outbox keeps every point,
    and replacing the sink with a working one writes them all."""
    async with FakeInflux([Answer(401, "authorization failed")], repeat_last=True) as fake:
        sink = {
            "type": "influxdb",
            "url": fake.url,
            "database": "d",
            "username": "u",
            "password": "wrong-password",
        }
        pipeline = await pipeline_for(sink, batch_size=10)
        reads = 0
        read_batch = pipeline.outbox.read_batch

        async def counting_read_batch(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await read_batch(*args, **kwargs)

        pipeline.outbox.read_batch = counting_read_batch
        await pipeline.emitter_for("counter").points(numbered(0, 50))
        stopped = await logs.wait("sink_stopped_auth")
        assert "HTTP 401" in stopped["error"] and "authorization failed" in stopped["error"]
        assert "SIGHUP" in stopped["hint"]
        assert "wrong-password" not in str(stopped)
        assert pipeline.flusher.blocked_reason is not None
        reads_when_blocked = reads
        # several flush intervals pass: a blocked flusher neither retries nor spins
        await asyncio.sleep(0.3)
        assert len(fake.requests) == 1
        assert (fake.requests[0].authorization or "").startswith("Basic ")
        assert reads - reads_when_blocked <= 2
        assert pipeline.outbox.depth == 50

        empty = drained(pipeline.outbox)
        await pipeline.replace_sink(
            make_config(pipeline.state_dir, sink=influxdb.sink_config(), outbox=FAST)
        )
        await asyncio.wait_for(empty.wait(), 10)
        assert numbers(influxdb) == list(range(50))
        assert pipeline.flusher.blocked_reason is None


async def test_influxdb_v2_sink_writes_to_victoriametrics(
    state_dir: Path, victoriametrics: Any, pipeline_for: Any
) -> None:
    """The influxdb_v2 sink writes through /api/v2/write; the series read back by export."""
    measurement = f"cf_{uuid.uuid4().hex[:8]}"
    now_ms = time.time_ns() // 1_000_000 - 60_000  # VictoriaMetrics keeps recent samples
    points = [
        Point(measurement, {"station": f"FRS{i}"}, {"power_kw": 1.5 * i, "sessions": i}, 0)
        for i in range(1, 4)
    ]
    points = [
        Point(p.measurement, p.tags, p.fields, (now_ms + i) * 1_000_000)
        for i, p in enumerate(points)
    ]
    sink = {
        "type": "influxdb_v2",
        "url": victoriametrics.url,
        "token": "any-token",
        "org": "org",
        "bucket": "bucket",
    }
    pipeline = await pipeline_for(sink)
    empty = drained(pipeline.outbox)
    await pipeline.emitter_for("counter").points(points)
    await asyncio.wait_for(empty.wait(), 10)
    assert pipeline.metrics.component("sink")["points_written"] == 3
    series = victoriametrics.export(f'{{__name__=~"{measurement}_.*"}}')
    found = {
        (s["metric"]["__name__"], s["metric"]["station"]): (s["values"], s["timestamps"])
        for s in series
    }
    expected = {}
    for i, point in enumerate(points):
        for name, value in point.fields.items():
            key = (f"{measurement}_{name}", point.tags["station"])
            expected[key] = ([value], [now_ms + i])
    assert found == expected


async def test_influxdb_v1_sink_query_reads_points_back(influxdb: Any) -> None:
    """query() returns the stored points of one measurement, oldest first, newest N."""
    sink = InfluxV1Sink(
        InfluxV1SinkConfig(type="influxdb", url=influxdb.url, database=influxdb.database),
        Counters("sink"),
    )
    await sink.open()
    try:
        await sink.write("\n".join(encode(p) for p in numbered(0, 5)).encode(), 5)
        points = await sink.query("counter")
        assert [p.fields["n"] for p in points] == [0, 1, 2, 3, 4]
        assert points[0].tags == {"source": "test"}
        assert points[0].time_ns == 1_700_000_000_000_000_000
        newest = await sink.query("counter", since_ns=1_700_000_000_000_000_001, limit=2)
        assert [p.fields["n"] for p in newest] == [3, 4]
    finally:
        await sink.close()


async def test_embedded_store_overwrites_the_same_series_and_time(tmp_path: Path) -> None:
    """A second write of one series at one time replaces the first; other series stay."""
    store = EmbeddedStore(tmp_path / "points.db")
    await store.open()
    try:
        first = Point("m", {"a": "1", "b": "2"}, {"v": 1.0, "old": True}, 10)
        again = Point("m", {"b": "2", "a": "1"}, {"v": 2.0}, 10)  # same series, tag order aside
        other_series = Point("m", {"a": "1", "b": "3"}, {"v": 3.0}, 10)
        other_time = Point("m", {"a": "1", "b": "2"}, {"v": 4.0}, 11)
        await store.write(encode(first).encode(), 1)
        body = "\n".join(encode(p) for p in (again, other_series, other_time)).encode()
        await store.write(body, 3)
        stored = await store.query("m")
        assert sorted((p.time_ns, p.tags["b"], dict(p.fields)) for p in stored) == [
            (10, "2", {"v": 2.0}),
            (10, "3", {"v": 3.0}),
            (11, "2", {"v": 4.0}),
        ]
        assert await store.counts() == {"m": 3}
    finally:
        await store.close()


async def test_a_locked_embedded_store_is_retried_not_fatal(
    state_dir: Path, pipeline_for: Any, logs: LogWatch
) -> None:
    """While another process holds the store's write lock, writes are retried; once it is
    released every point is stored and the flusher is still running."""
    pipeline = await pipeline_for({"type": "embedded"})
    locker = sqlite3.connect(state_dir / "points.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        empty = drained(pipeline.outbox)
        await pipeline.emitter_for("counter").points(numbered(0, 10))
        failing = await logs.wait("sink_write_failing")
        assert "locked" in failing["error"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await asyncio.wait_for(empty.wait(), 10)
    empty.clear()
    await pipeline.emitter_for("counter").points(numbered(10, 5))
    await asyncio.wait_for(empty.wait(), 10)
    stored = await pipeline.sink.query("counter")
    assert [p.fields["n"] for p in stored] == list(range(15))


async def test_create_database_waits_for_a_server_that_is_down_at_start(tmp_path) -> None:
    """With create_database, a server down at start is not fatal: the database is created
    before the first write once the server is up, and the points arrive."""
    from daemon.config import InfluxV1SinkConfig
    from daemon.errors import SinkRetryable
    from daemon.metrics import Counters
    from daemon.sinks.influxdb_v1 import InfluxV1Sink
    from tests.servers import InfluxServer

    server = InfluxServer(tmp_path / "influxd")
    config = InfluxV1SinkConfig(
        type="influxdb", url=server.url, database="created_late", create_database=True
    )
    sink = InfluxV1Sink(config, Counters("sink"))
    await sink.open()  # nothing listens yet: no exception
    try:
        with pytest.raises(SinkRetryable):
            await sink.write(b"m v=1 1", 1)
        server.start()
        try:
            await sink.write(b"m v=1 1\nm v=2 2", 2)
            rows = server.rows('SELECT count("v") FROM "m"', "created_late")
            assert rows[0]["count"] == 2
        finally:
            server.stop()
    finally:
        await sink.close()
