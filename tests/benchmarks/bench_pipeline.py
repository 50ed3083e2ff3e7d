"""Benchmark: records to acknowledged writes into a real InfluxDB, and memory with it down.

    python tests/benchmarks/bench_pipeline.py [--points 1500000] [--rounds 5] [--rss-points N]

Throughput, on one data set of realistic records (`bench_data`), each contender writing into
a fresh database of the same influxd (started here, on loopback), in interleaved rounds:

- chargeflux: `Point`s handed to the engine's emitters (four concurrent sources, each batch
  with its checkpoint), committed to the outbox (SQLite, WAL, synchronous=FULL: the default),
  flushed by the flusher through the InfluxDB 1.x sink until every point is acknowledged;
- raw POST (the physical limit): the same line protocol, encoded before the clock starts,
  POSTed by `http.client` in batches of 5000 lines, one request after the other;
- influxdb-client's batching `WriteApi` (batch_size 5000), given the same records as its own
  `Point`s and closed (which waits for every batch). InfluxDB 1.6 has no `/api/v2/write`, so
  its requests are redirected to `/write` (path and query rewritten, body untouched).

Each contender's time runs from the first record handed over to the last write
acknowledged; every database is checked to hold every point afterwards. Targets:
chargeflux ≥ 0.8 x raw POST and ≥ 2 x WriteApi (medians over the rounds).

Memory: a real daemon (`rss_child.py`) whose InfluxDB is down queues `--rss-points` points
(5 million) in its outbox; its RSS is sampled throughout and must peak under 150 MB.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import structlog  # noqa: E402

from daemon.config import parse_config  # noqa: E402
from daemon.pipeline import Pipeline  # noqa: E402
from daemon.points import encode  # noqa: E402
from tests.benchmarks.bench_data import Emit, build_emits, count_points  # noqa: E402
from tests.servers import InfluxServer, free_port, wait_until  # noqa: E402

BATCH = 5000
RAW_TARGET, WRITEAPI_TARGET, RSS_LIMIT_MB = 0.8, 2.0, 150.0


def wait_idle(process: psutil.Process, limit: float = 0.15, timeout: float = 60.0) -> None:
    """Wait until influxd's CPU use over half a second drops under `limit` cores."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.cpu_percent(interval=0.5) / 100 < limit:
            return


def expected_counts(emits: list[Emit]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for emit in emits:
        for point in emit.points:
            counts[point.measurement] = counts.get(point.measurement, 0) + 1
    return counts


def stored_counts(influx: InfluxServer, database: str, measurements: list[str]) -> dict[str, int]:
    """Points per measurement, counted on a field every point of it carries."""
    first_field = {
        "enedis_load_curve": "power_w",
        "qualicharge_status": "etat_pdc",
        "charging_session": "session_id",
        "bluecurrent_status": "activity",
    }
    counts = {}
    for measurement in measurements:
        rows = influx.rows(
            f'SELECT count("{first_field[measurement]}") FROM "{measurement}"', database
        )
        counts[measurement] = rows[0]["count"] if rows else 0
    return counts


# ---- contenders ----------------------------------------------------------------------------


def run_chargeflux(emits: list[Emit], url: str, database: str, synchronous: str = "full") -> float:
    """Emitters → outbox → flusher → InfluxDB 1.x sink; seconds until all acknowledged."""
    state_dir = Path(tempfile.mkdtemp(prefix="bench-state-"))
    config = parse_config(
        {
            "state_dir": str(state_dir),
            "sink": {"type": "influxdb", "url": url, "database": database},
            "outbox": {"batch_size": BATCH, "synchronous": synchronous},
        },
        "<bench>",
    )
    by_source: dict[str, list[Emit]] = {}
    for emit in emits:
        by_source.setdefault(emit.source, []).append(emit)

    async def run() -> float:
        pipeline = Pipeline(config)
        await pipeline.start()

        async def source(name: str, batches: list[Emit]) -> None:
            emitter = pipeline.emitter_for(name)
            for page, emit in enumerate(batches):
                await emitter.points(emit.points, checkpoint={"page": page})

        started = time.perf_counter()
        await asyncio.gather(*(source(name, batches) for name, batches in by_source.items()))
        drained = await pipeline.close(drain_timeout=None)
        elapsed = time.perf_counter() - started
        if not drained:
            raise RuntimeError("the outbox was not drained")
        return elapsed

    try:
        return asyncio.run(run())
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def run_raw(bodies: list[bytes], port: int, database: str) -> float:
    """Pre-encoded batches POSTed one after the other with http.client."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/write?db={database}&precision=ns"
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    started = time.perf_counter()
    for body in bodies:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"raw POST got HTTP {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def _to_v1_write(client: Any) -> None:
    """Send the client's `/api/v2/write` requests to InfluxDB 1.x's `/write` instead."""
    rest = client.api_client.rest_client
    request = rest.request

    def rewritten(method: str, url: str, query_params: Any = None, *args: Any, **kw: Any) -> Any:
        if url.endswith("/api/v2/write"):
            url = url[: -len("/api/v2/write")] + "/write"
            params = dict(query_params or [])
            query_params = [("db", params["bucket"]), ("precision", params.get("precision", "ns"))]
        return request(method, url, query_params, *args, **kw)

    rest.request = rewritten


def run_writeapi(records: list[list[Any]], url: str, database: str) -> float:
    """influxdb-client's batching WriteApi, fed emit by emit; closed to wait for the writes."""
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import WriteOptions

    failures: list[str] = []
    client = InfluxDBClient(url=url, token="unused", org="unused", timeout=60_000)
    _to_v1_write(client)
    write_api = client.write_api(
        write_options=WriteOptions(batch_size=BATCH, flush_interval=1000, jitter_interval=0),
        error_callback=lambda _conf, _data, exc: failures.append(repr(exc)),
    )
    started = time.perf_counter()
    for batch in records:
        write_api.write(bucket=database, record=batch)
    write_api.close()
    elapsed = time.perf_counter() - started
    client.close()
    if failures:
        raise RuntimeError(f"WriteApi failed: {failures[0]}")
    return elapsed


def client_points(emits: list[Emit]) -> list[list[Any]]:
    """The same records as influxdb-client `Point`s."""
    from influxdb_client import Point as ClientPoint
    from influxdb_client import WritePrecision

    out = []
    for emit in emits:
        batch = []
        for point in emit.points:
            record = ClientPoint(point.measurement)
            for key, value in point.tags.items():
                record.tag(key, value)
            for key, value in point.fields.items():
                record.field(key, value)
            batch.append(record.time(point.time_ns, WritePrecision.NS))
        out.append(batch)
    return out


# ---- memory --------------------------------------------------------------------------------


def measure_rss(points: int, workdir: Path) -> tuple[float, float, int, float]:
    """Peak RSS and RSS when queueing began (MB) of a daemon queueing `points` with InfluxDB
    down, the points it queued, and the seconds it took."""
    state_dir = workdir / "rss-state"
    config = workdir / "rss-params.json"
    dead_port = free_port()  # nothing listens there: InfluxDB is down
    config.write_text(
        json.dumps(
            {
                "state_dir": str(state_dir),
                "log": {"level": "warning", "format": "json"},
                "sink": {
                    "type": "influxdb",
                    "url": f"http://127.0.0.1:{dead_port}",
                    "database": "down",
                },
                "outbox": {"drain_timeout_s": 1},
                "sources": {"flood": {"points": points}},
            }
        ),
        encoding="utf-8",
    )
    log = (workdir / "rss-child.log").open("ab")
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.rss_child", "run", "--config", str(config)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process = psutil.Process(child.pid)
    state_db = state_dir / "state.db"
    peak, first = 0.0, 0.0

    def sample() -> bool:
        nonlocal peak, first
        if child.poll() is not None:
            raise RuntimeError(f"the memory daemon exited with {child.returncode}")
        rss = process.memory_info().rss / 2**20
        peak = max(peak, rss)
        if not first and _outbox_depth(state_db) > 0:
            first = rss
        return _flood_done(state_db)

    started = time.perf_counter()
    try:
        wait_until(sample, 1800, f"{points} points queued", step=0.05)
        elapsed = time.perf_counter() - started
        queued = _outbox_depth(state_db)
        sample()
    finally:
        child.terminate()
        child.wait(60)
        log.close()
    return peak, first, queued, elapsed


def _read_only(path: Path, query: str) -> Any:
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute(query).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def _flood_done(path: Path) -> bool:
    return _read_only(path, "SELECT value FROM checkpoints WHERE key = 'done'") is not None


def _outbox_depth(path: Path) -> int:
    return int(_read_only(path, "SELECT COALESCE(SUM(n), 0) FROM outbox") or 0)


# ---- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-points", type=int, default=5_000_000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument(
        "--synchronous",
        choices=("full", "normal"),
        default="full",
        help="the outbox's SQLite synchronous mode (full: the default, durable on power loss)",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    print(
        f"cores: {os.cpu_count()}; load average at start: {os.getloadavg()}; "
        f"outbox synchronous={args.synchronous}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    ok = True
    try:
        if not args.skip_throughput:
            ok &= throughput(args.points, args.rounds, workdir, args.synchronous)
        if not args.skip_rss:
            ok &= memory(args.rss_points, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def throughput(total: int, rounds: int, workdir: Path, synchronous: str) -> bool:
    started = time.perf_counter()
    emits = build_emits(total)
    points = count_points(emits)
    expected = expected_counts(emits)
    lines = [encode(point) for emit in emits for point in emit.points]
    bodies = ["\n".join(lines[i : i + BATCH]).encode() for i in range(0, len(lines), BATCH)]
    size_mb = sum(map(len, bodies)) / 2**20
    del lines
    records = client_points(emits)
    gc.collect()
    gc.freeze()  # the data sets are long-lived: keep them out of every contender's GC passes
    print(
        f"data set: {points} points in {len(emits)} emits, {expected}; "
        f"{size_mb:.0f} MB of line protocol; built in {time.perf_counter() - started:.0f} s"
    )
    influx = InfluxServer(workdir / "influxd")
    influx.start()
    assert influx.process is not None
    influxd = psutil.Process(influx.process.pid)
    contenders: dict[str, Callable[[str], float]] = {
        "chargeflux": lambda db: run_chargeflux(emits, influx.url, db, synchronous),
        "raw POST": lambda db: run_raw(bodies, influx.port, db),
        "WriteApi": lambda db: run_writeapi(records, influx.url, db),
    }
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        # warm-up, not timed: a fresh influxd is slower on its first writes (heap growth,
        # first shards), which would penalise whichever contender runs first
        warm_up = influx.create_database()
        run_raw(bodies[: len(bodies) // 4], influx.port, warm_up)
        influx.drop_database(warm_up)
        for round_index in range(rounds):
            order = names[round_index % 3 :] + names[: round_index % 3]
            for name in order:
                database = influx.create_database()
                wait_idle(influxd)
                cpu_before, own_before = influxd.cpu_times(), os.times()
                elapsed = contenders[name](database)
                cpu = sum(influxd.cpu_times()[:2]) - sum(cpu_before[:2])
                own = sum(os.times()[:2]) - sum(own_before[:2])
                stored = stored_counts(influx, database, list(expected))
                influx.drop_database(database)
                if stored != expected:
                    raise RuntimeError(f"{name} stored {stored}, expected {expected}")
                times[name].append(elapsed)
                print(
                    f"round {round_index + 1} {name:>10}: {elapsed:6.2f} s "
                    f"{points / elapsed:9,.0f} points/s (influxd {cpu / elapsed:.2f} cores, "
                    f"{name} {own / elapsed:.2f} cores, {own / points * 1e6:.1f} µs/point)"
                )
    finally:
        influx.stop()
    rate = {name: points / statistics.median(values) for name, values in times.items()}
    vs_raw = rate["chargeflux"] / rate["raw POST"]
    vs_api = rate["chargeflux"] / rate["WriteApi"]
    for name in names:
        print(f"median {name:>10}: {rate[name]:9,.0f} points/s")
    print(f"chargeflux / raw POST = {vs_raw:.2f} (target >= {RAW_TARGET})")
    print(f"chargeflux / WriteApi = {vs_api:.2f} (target >= {WRITEAPI_TARGET})")
    return vs_raw >= RAW_TARGET and vs_api >= WRITEAPI_TARGET


def memory(points: int, workdir: Path) -> bool:
    peak, first, queued, elapsed = measure_rss(points, workdir)
    print(
        f"memory: {queued:,} points queued with InfluxDB down in {elapsed:.0f} s "
        f"({queued / elapsed:,.0f} points/s into the outbox); "
        f"RSS {first:.0f} MB when queueing began, peak {peak:.0f} MB "
        f"(limit {RSS_LIMIT_MB:.0f} MB)"
    )
    return queued >= points and peak < RSS_LIMIT_MB


if __name__ == "__main__":
    sys.exit(main())
