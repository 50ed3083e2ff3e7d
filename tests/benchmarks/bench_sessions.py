"""Benchmark: the session exclusion engine vs the seed notebook's pandas pipeline, and the
QualiCharge path end to end from PostgreSQL to InfluxDB.

    python tests/benchmarks/bench_sessions.py [--sessions 1000000] [--no-e2e]

Same sessions for every contender (a simulated QualiCharge fleet, 1 million sessions over a
month, with every anomaly). Measured side by side in this run:

1. baseline: the seed's pipeline (`tests/checks/seed_reference.py`: one `DataFrame.apply`
   per rule, shifted columns for duplicates and overlaps), on a DataFrame already built;
2. engine, judging: the streaming engine alone — rule bits and its sorted per-charge-point
   memory, no points, no SQL — on pages of 50,000 sessions as the PostgreSQL reader hands
   them over (charge point facts with place codes, see `_pages`), in arrival order (by
   `updated_at`) and shuffled; target: 50x the baseline's sessions/s. Shown beside, not
   targeted: pages of 5000, and pages without place codes (as the SQLite reader gives them);
3. engine, `judge()`: the same plus the `charging_session`/`anomaly` points it returns
   (the point building is `daemon.sessions.session_point`, shared with every source);
4. engine, `judge()` + ledger commit: also the ledger rows and monthly totals in SQLite;
5. end to end: PostgreSQL → collector → engine → outbox → InfluxDB 1.x (a real `influxd`),
   until the outbox is drained, in a process of its own as the daemon runs (not one holding
   the judging runs' millions of objects); target: 50,000 sessions/s.

The flags of every engine run must equal the baseline's, session for session. Rates 1-4 are
measured in CPU time of this process (both sides alike), so other load on the machine does
not skew the ratio; the end-to-end rate is wall-clock time. Exit status: 0 when every
target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from collectors.qualicharge.fake import make_fleet, make_sessions  # noqa: E402
from daemon.checks.engine import SessionEngine, SourceState, build_session_judge  # noqa: E402
from daemon.checks.memory import Memory  # noqa: E402
from daemon.checks.rules import SessionRulesConfig  # noqa: E402
from daemon.records import ChargingSession, SessionBatch  # noqa: E402
from daemon.state import StateDB  # noqa: E402
from tests.checks.seed_reference import frame, reference_flags  # noqa: E402

BATCH = 50_000  # the QualiCharge collector's default page size
SMALL_BATCH = 5000
JUDGING_TARGET = 50.0
E2E_TARGET = 50_000.0


def _as_read(sessions: Sequence[ChargingSession]) -> list[ChargingSession]:
    """Fresh copies made in this order, as the database reader makes them: the engine gets
    objects laid out in arrival order, not scattered by the generator's order."""
    return [
        ChargingSession(
            source=s.source,
            session_id="".join(s.session_id),
            pdc="".join(s.pdc),
            station="".join(s.station),
            operational_unit="".join(s.operational_unit),
            siren="".join(s.siren),
            start=s.start.replace(),
            end=s.end.replace(),
            energy_kwh=s.energy_kwh + 0.0,
            max_power_kw=s.max_power_kw,
            updated_at=None if s.updated_at is None else s.updated_at.replace(),
            entity="".join(s.entity),
        )
        for s in sessions
    ]


def _flags(engine: SessionEngine) -> dict[str, int]:
    return engine.flags("qualicharge")


def _pages(
    sessions: Sequence[ChargingSession], size: int, coded: bool = True
) -> list[SessionBatch]:
    """The sessions in columns, page by page, as a database reader hands them over. `coded`:
    as the PostgreSQL reader does (`CursorPages`) — the session id and charge point a string
    per row, the charge point's station, unit, SIREN and entity from a directory read once
    (strings shared by its rows) and its directory row as the page's `place_codes`;
    otherwise as the SQLite reader does, every field a string of its own."""
    pages = [
        SessionBatch.from_sessions("qualicharge", sessions[first : first + size])
        for first in range(0, len(sessions), size)
    ]
    if not coded:
        return pages
    directory: dict[tuple[str, ...], int] = {}
    places: list[tuple[str, ...]] = []
    coded_pages = []
    for page in pages:
        keys = zip(
            page.pdc, page.station, page.operational_unit, page.siren, page.entity, strict=True
        )
        codes = [directory.setdefault(key, len(directory)) for key in keys]
        places.extend(list(directory)[len(places) :])
        facts = [places[code] for code in codes]
        _, station, unit, siren, entity = (list(field) for field in zip(*facts, strict=True))
        coded_pages.append(
            replace(
                page,
                station=station,
                operational_unit=unit,
                siren=siren,
                entity=entity,
                place_codes=np.asarray(codes, np.int64),
            )
        )
    return coded_pages


def _check(name: str, got: dict[str, int], expected: dict[str, int]) -> bool:
    wrong = sum(1 for sid, bits in expected.items() if got.get(sid) != bits)
    if wrong or len(got) != len(expected):
        print(f"  {name}: {wrong} sessions flagged differently from the baseline  FAIL")
        return False
    return True


def judging(pages: Sequence[SessionBatch]) -> tuple[float, dict[str, int]]:
    """The judging alone (rule bits + memory), no points, no SQL."""
    engine = build_session_judge(SessionRulesConfig(), None)  # type: ignore[arg-type]
    engine._loaded = True
    state = engine._sources["qualicharge"] = SourceState(Memory())
    began = time.process_time()
    for page in pages:
        state.seq += 1
        engine._run(state, page)
    return time.process_time() - began, _flags(engine)


async def judge_calls(
    pages: Sequence[SessionBatch], workdir: Path, commit: bool
) -> tuple[float, dict[str, int], int]:
    """`judge()` per batch (points included); with `commit`, also the ledger transaction."""
    db = StateDB(workdir / f"state-{uuid.uuid4().hex[:6]}.db")
    engine = build_session_judge(SessionRulesConfig(), db)
    await engine.load()
    points = 0
    began = time.process_time()
    for page in pages:
        judged = await engine.judge("qualicharge", page)
        points += len(judged.points) + len(judged.lines)
        if commit and judged.on_commit is not None:
            await db.transaction(judged.on_commit)
    elapsed = time.process_time() - began
    flags = _flags(engine)
    db.close()
    return elapsed, flags, points


async def end_to_end(count: int, workdir: Path, judged: bool = True) -> float | None:
    """PostgreSQL → InfluxDB through the real collector, engine, outbox, flusher and sink
    (with `judged` false, every session accepted unjudged: the pipeline's own ceiling)."""
    try:
        from daemon.pipeline import Pipeline
        from tests.helpers import make_config
        from tests.qualicharge.harness import Harness  # noqa: F401 (sanity: test tree present)
        from tests.servers import InfluxServer, ServiceUnavailable, postgres_database
    except ImportError as exc:
        print(f"  end to end: pending ({exc})")
        return None
    import aiohttp
    import structlog

    from collectors.qualicharge.collector import QualiChargeCollector
    from collectors.qualicharge.config import QualiChargeConfig
    from collectors.qualicharge.simulator import build_database
    from daemon.collector import CollectorContext

    try:
        url, drop = postgres_database()
    except ServiceUnavailable as exc:
        print(f"  end to end: PostgreSQL unavailable ({exc})")
        return None
    influx = InfluxServer(workdir / f"influxd-{uuid.uuid4().hex[:6]}")
    try:
        influx.start()
        database = influx.create_database()
        began = time.perf_counter()
        fake = await asyncio.to_thread(
            build_database, url, pdcs=max(40, count // 250), sessions=count, corrections=0.0
        )
        print(
            f"  (PostgreSQL filled with {count:,} sessions in {time.perf_counter() - began:.0f} s)"
        )
        run_dir = workdir / f"e2e-{uuid.uuid4().hex[:6]}"
        run_dir.mkdir()
        config = make_config(
            run_dir,
            sink={"type": "influxdb", "url": influx.url, "database": database},
        )
        pipeline = Pipeline(config)
        if judged:
            engine = build_session_judge(SessionRulesConfig(), pipeline.db)
            await engine.load()
            pipeline.judge = engine
        await pipeline.start()
        source = QualiChargeConfig(
            database_url=url,
            operational_units=fake.fleet.operational_units,
            settle_s=0,
            page_size=BATCH,
        )
        async with aiohttp.ClientSession() as http:
            ctx = CollectorContext(
                name="qualicharge",
                emit=pipeline.emitter_for("qualicharge"),
                checkpoints=pipeline.checkpoints_for("qualicharge"),
                http=http,
                counters=pipeline.metrics.component("qualicharge"),
                log=structlog.get_logger("bench"),
                state_dir=run_dir,
            )
            collector = QualiChargeCollector(source, ctx)
            began = time.perf_counter()
            read = await collector.poll_sessions()
            drained = await pipeline.close(drain_timeout=600)
            elapsed = time.perf_counter() - began
            await collector.close()
        fake.engine.dispose()
        stored = influx.query("SELECT count(energy_kwh) FROM charging_session", database)
        written = stored[0]["values"][0][1] if stored else 0
        print(
            f"  end to end: {read:,} sessions read, {written:,} charging_session points in "
            f"InfluxDB, drained={drained}, {elapsed:.1f} s"
        )
        if written != read or not drained:
            print("  end to end: not every session reached InfluxDB  FAIL")
            return 0.0
        return read / elapsed
    finally:
        influx.stop()
        drop()


async def judging_section(count: int) -> bool:
    """The baseline and the engine's rates (1.-4.), printed; whether the targets are met."""
    ok = True
    print(f"generating {count:,} sessions ...", flush=True)
    fleet = make_fleet(max(40, count // 250), operational_units=8, seed=11)
    sessions = make_sessions(fleet, count, seed=12)
    arrival = _as_read(sorted(sessions, key=lambda s: (s.updated_at, s.session_id)))
    shuffled = list(sessions)
    random.Random(13).shuffle(shuffled)
    shuffled = _as_read(shuffled)
    gc.collect()
    gc.freeze()  # the inputs are long-lived for every contender alike

    print("baseline: the seed notebook's pandas pipeline ...", flush=True)
    began = time.perf_counter()
    table = frame(sessions)
    built = time.perf_counter() - began
    began = time.process_time()
    expected = reference_flags(table)
    baseline = count / (time.process_time() - began)
    del table
    print(f"  pandas apply pipeline: {baseline:,.0f} sessions/s (DataFrame built in {built:.1f} s)")

    print("engine ...", flush=True)
    rates: dict[str, float] = {}
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for label, feed in (("arrival order", arrival), ("shuffled", shuffled)):
            pages = _pages(feed, BATCH)
            elapsed, flags = judging(pages)
            same &= _check(f"judging, {label}", flags, expected)
            rates[f"judging, {label}"] = count / elapsed
            elapsed, flags = judging(_pages(feed, SMALL_BATCH))
            same &= _check(f"judging, {label}, pages of {SMALL_BATCH}", flags, expected)
            rates[f"judging, {label}, pages of {SMALL_BATCH}"] = count / elapsed
            elapsed, flags = judging(_pages(feed, BATCH, coded=False))
            same &= _check(f"judging, {label}, no place codes", flags, expected)
            rates[f"judging, {label}, no place codes"] = count / elapsed
            elapsed, flags, _ = await judge_calls(pages, workdir, commit=False)
            same &= _check(f"judge(), {label}", flags, expected)
            rates[f"judge() with points, {label}"] = count / elapsed
            gc.collect()
        elapsed, flags, _ = await judge_calls(_pages(arrival, BATCH), workdir, commit=True)
        same &= _check("judge() + ledger", flags, expected)
        rates["judge() + ledger commit, arrival order"] = count / elapsed
        for name, rate in rates.items():
            ratio = rate / baseline
            targeted = name in {"judging, arrival order", "judging, shuffled"}
            target = f"  (target {JUDGING_TARGET:.0f}x)" if targeted else ""
            print(f"  {name:42s} {rate:>12,.0f} sessions/s  {ratio:6.1f}x the baseline{target}")
            if targeted and ratio < JUDGING_TARGET:
                ok = False
                print(f"  {name}: below {JUDGING_TARGET:.0f}x  MISS")
        print(f"  flags equal to the baseline's for all {count:,} sessions: {same}")
        ok &= same
    return ok


async def end_to_end_section(count: int, pipeline_alone: bool) -> bool:
    """The end-to-end rate (5.), printed; whether it meets the target (or was not measured)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rate = await end_to_end(count, workdir)
        met = True
        if rate is None:
            print("  end to end: not measured")
        else:
            print(
                f"  end to end: {rate:,.0f} sessions/s "
                f"({rate / E2E_TARGET:.2f}x the {E2E_TARGET:,.0f}/s target)"
            )
            if rate < E2E_TARGET:
                met = False
                print("  end to end: below target  MISS")
        if pipeline_alone:
            alone = await end_to_end(count, workdir, judged=False)
            if alone is not None:
                print(f"  end to end, sessions accepted unjudged: {alone:,.0f} sessions/s")
    return met


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--no-e2e", action="store_true", help="skip PostgreSQL → InfluxDB")
    parser.add_argument(
        "--pipeline-alone",
        action="store_true",
        help="also run end to end with sessions accepted unjudged (the pipeline's ceiling)",
    )
    parser.add_argument("--end-to-end-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.sessions
    if args.end_to_end_only:
        return 0 if await end_to_end_section(count, args.pipeline_alone) else 1
    ok = await judging_section(count)
    if not args.no_e2e:
        # In a process of its own, as the daemon runs: not one that holds the judging runs'
        # millions of objects and their memory.
        print("end to end: PostgreSQL → InfluxDB ...", flush=True)
        command = [sys.executable, __file__, "--end-to-end-only", "--sessions", str(count)]
        if args.pipeline_alone:
            command.append("--pipeline-alone")
        child = await asyncio.create_subprocess_exec(*command)
        ok &= await child.wait() == 0
    print("RESULT:", "all targets met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
