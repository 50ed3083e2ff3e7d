"""Against the real PostgreSQL: incremental pulls, kill -9 and resume, corrections."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from collectors.qualicharge.db import Watermark
from collectors.qualicharge.fake import make_sessions
from collectors.qualicharge.simulator import SimulatedDatabase, build_database
from daemon.checks.store import month_totals
from tests.qualicharge.conftest import config_for
from tests.qualicharge.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.services


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[tuple[SimulatedDatabase, str, str]]:
    """A simulated QualiCharge database in its own PostgreSQL schema."""
    schema = f"qc_{uuid.uuid4().hex[:8]}"
    database = build_database(postgres_url, schema=schema, pdcs=30, sessions=3000)
    yield database, postgres_url, schema
    database.engine.dispose()


def _ids_after(database: SimulatedDatabase, mark: Watermark | None) -> set[str]:
    return {
        sid
        for sid, s in database.sessions.items()
        if mark is None or (s.updated_at, uuid.UUID(sid)) > (mark.updated_at, uuid.UUID(mark.id))
    }


async def test_incremental_pulls_lose_nothing_and_repeat_nothing(pg_db, harness: Harness) -> None:
    """Sessions inserted and updated between polls are each read exactly once more; the
    ledger then holds every session once, at its latest version."""
    database, url, schema = pg_db
    collector = harness.collector(config_for(database, url, db_schema=schema, page_size=250))
    assert await collector.poll_sessions() == 3000
    originals = sorted(database.sessions)
    now = datetime.now(UTC) - timedelta(seconds=1)
    fresh = make_sessions(database.fleet, 200, seed=77, start=now - timedelta(days=2), days=1)
    same_stamp = now - timedelta(milliseconds=500)
    database.add([replace(s, updated_at=same_stamp) for s in fresh])  # one shared updated_at
    corrected = database.correct(originals[:100], factor=1.25, at=now)
    assert await collector.poll_sessions() == 300
    assert await collector.poll_sessions() == 0
    ledger = await harness.ledger()
    assert len(ledger) == len(database.sessions) == 3200
    for session in corrected:
        assert ledger[session.session_id]["energy_kwh"] == session.energy_kwh
    await collector.close()


async def test_kill_9_between_pages_resumes_from_the_watermark(pg_db, tmp_path: Path) -> None:
    """A collector killed with SIGKILL mid-poll resumes after its last committed page: the
    second run reads exactly the sessions the first did not commit."""
    database, url, schema = pg_db
    state = tmp_path / "state"
    state.mkdir()
    raw = {
        "database_url": url,
        "db_schema": schema,
        "operational_units": list(database.fleet.operational_units),
        "settle_s": 0,
        "page_size": 100,
    }

    async def child() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.qualicharge.harness",
            str(state),
            json.dumps(raw),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )

    first = await child()
    assert first.stdout is not None
    while True:
        line = await asyncio.wait_for(first.stdout.readline(), timeout=60)
        assert line, "the child ended before committing three pages"
        if line.strip() == b"PAGE 3":
            break
    os.kill(first.pid, signal.SIGKILL)
    assert await asyncio.wait_for(first.wait(), timeout=30) == -signal.SIGKILL

    async with aiohttp.ClientSession() as http:
        peek = await Harness(state, http).start()
        mark = Watermark.from_json(await peek.checkpoints.get("watermark"))
        committed = set(await peek.ledger())
        await peek.close()
    assert mark is not None and len(committed) >= 300
    assert committed == set(database.sessions) - _ids_after(database, mark)

    second = await child()
    out, _ = await asyncio.wait_for(second.communicate(), timeout=120)
    assert second.returncode == 0
    done = int(out.decode().strip().splitlines()[-1].split()[1])
    assert done == len(_ids_after(database, mark)) == 3000 - len(committed)
    async with aiohttp.ClientSession() as http:
        final = await Harness(state, http).start()
        assert set(await final.ledger()) == set(database.sessions)
        await final.close()


async def test_correction_changes_stored_energy_and_month_total(pg_db, harness: Harness) -> None:
    """A session corrected upstream changes its ledger energy and its month's total by the
    difference, and its `charging_session` point is rewritten at the same time."""
    database, url, schema = pg_db
    collector = harness.collector(config_for(database, url, db_schema=schema))
    await collector.poll_sessions()
    ledger = await harness.ledger()
    sid = next(sid for sid, row in ledger.items() if row["accepted"])
    month = ledger[sid]["month"]
    original = database.sessions[sid]

    def total(conn) -> float:
        return sum(t.energy_kwh for t in month_totals(conn, month))

    before = await harness.db.run(total)
    (fixed,) = database.correct([sid], factor=0.5)  # lower energy: still accepted
    assert await collector.poll_sessions() == 1
    after = await harness.db.run(total)
    assert (await harness.ledger())[sid]["energy_kwh"] == fixed.energy_kwh
    assert after == pytest.approx(before + fixed.energy_kwh - original.energy_kwh)
    points = [
        p
        for p in await harness.committed()
        if p.measurement == "charging_session" and p.fields["session_id"] == sid
    ]
    assert len({p.time_ns for p in points}) == 1
    assert points[-1].fields["energy_kwh"] == fixed.energy_kwh
    await collector.close()
