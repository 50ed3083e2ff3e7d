"""The QualiCharge collector on an SQLite copy of the database, through the real engine."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from structlog.testing import capture_logs

from collectors.qualicharge import PLUGIN
from collectors.qualicharge.db import Watermark
from collectors.qualicharge.fake import make_sessions
from daemon.checks.store import month_totals
from daemon.collector import DemoEnv
from daemon.errors import DataError, UpstreamError
from tests.checks.seed_reference import frame, reference_flags
from tests.qualicharge.conftest import config_for
from tests.qualicharge.harness import Harness


def _url(database) -> str:
    return str(database.engine.url)


async def test_first_poll_reads_judges_and_checkpoints(sqlite_db, harness: Harness) -> None:
    """Every session of the configured units (soft-deleted stations included) is judged once,
    with the seed pipeline's flags; the watermark is the last row; a second poll reads none."""
    collector = harness.collector(config_for(sqlite_db, _url(sqlite_db)))
    assert await collector.poll_sessions() == len(sqlite_db.sessions)
    ledger = await harness.ledger()
    expected = reference_flags(frame(list(sqlite_db.sessions.values())))
    assert {sid: row["flags"] for sid, row in ledger.items()} == expected
    deleted = {p.id_pdc_itinerance for p in sqlite_db.fleet.pdcs if p.station_deleted}
    assert deleted and any(row["pdc"] in deleted for row in ledger.values())
    points = await harness.committed()
    # a session re-judged when an earlier neighbour arrives in a later page is rewritten at
    # the same series and time (an overwrite), so one stored point per session remains
    stored = {}
    for point in points:
        if point.measurement == "charging_session":
            stored[(tuple(sorted(point.tags.items())), point.time_ns)] = point
    final = Counter(p.fields["session_id"] for p in stored.values())
    assert set(final.values()) == {1} and len(final) == len(expected)
    assert all(
        p.fields["accepted"] == (expected[p.fields["session_id"]] == 0) for p in stored.values()
    )
    assert {p.tags["rule"] for p in points if p.measurement == "anomaly"} >= {"DUPS", "OVLP"}
    mark = Watermark.from_json(await harness.checkpoints.get("watermark"))
    newest = max(sqlite_db.sessions.values(), key=lambda s: (s.updated_at, s.session_id))
    assert mark is not None and mark.id == newest.session_id
    assert await collector.poll_sessions() == 0
    await collector.close()


async def test_a_session_no_nanosecond_can_date_is_dead_lettered_not_fatal(
    sqlite_db, harness: Harness
) -> None:
    """One session dated in year 9999 (an operator's typo) is refused with its id and reason
    in the dead-letter table, logged and counted; every other session is read and judged,
    and the watermark moves past it."""
    bad = sorted(sqlite_db.sessions)[0]
    s = sqlite_db.tables.session
    with sqlite_db.engine.begin() as conn:
        conn.execute(
            update(s).where(s.c.id == uuid.UUID(bad)).values(start=datetime(9999, 1, 1, tzinfo=UTC))
        )
    collector = harness.collector(config_for(sqlite_db, _url(sqlite_db)))
    with capture_logs() as logs:
        assert await collector.poll_sessions() == len(sqlite_db.sessions) - 1
    ledger = await harness.ledger()
    assert bad not in ledger and len(ledger) == len(sqlite_db.sessions) - 1
    [(reason, what)] = await harness.outbox.dead_letters()
    assert what == f"QualiCharge session {bad}" and "1677-2262" in reason
    [event] = [entry for entry in logs if entry["event"] == "session_rejected"]
    assert event["count"] == 1 and event["log_level"] == "error"
    assert harness.counters["errors"] == 1
    assert await collector.poll_sessions() == 0
    await collector.close()


async def test_filter_by_siren_or_unit(sqlite_db, harness: Harness) -> None:
    """Only the sessions of the configured SIRENs or operational units are read."""
    unit = sqlite_db.fleet.operational_units[0]
    siren = sqlite_db.fleet.amenageurs[1][1]
    config = config_for(sqlite_db, _url(sqlite_db), operational_units=[unit], sirens=[siren])
    collector = harness.collector(config)
    await collector.poll_sessions()
    ledger = await harness.ledger()
    wanted = {
        sid
        for sid, s in sqlite_db.sessions.items()
        if s.operational_unit == unit or s.siren == siren
    }
    assert set(ledger) == wanted and len(wanted) < len(sqlite_db.sessions)
    await collector.close()


async def test_equal_updated_at_across_page_edges(sqlite_db, harness: Harness) -> None:
    """Rows sharing one `updated_at` across page edges are read once each, none skipped."""
    stamp = datetime(2025, 6, 1, 12, tzinfo=UTC)
    s = sqlite_db.tables.session
    with sqlite_db.engine.begin() as conn:
        conn.execute(update(s).values(updated_at=stamp))
    collector = harness.collector(config_for(sqlite_db, _url(sqlite_db), page_size=37))
    assert await collector.poll_sessions() == len(sqlite_db.sessions)
    assert set(await harness.ledger()) == set(sqlite_db.sessions)
    assert harness.counters["requests"] == -(-len(sqlite_db.sessions) // 37)
    await collector.close()


async def test_rows_committed_late_are_not_lost(sqlite_db, harness: Harness) -> None:
    """A row stamped before the last poll but committed after it is read by the next poll,
    because each poll leaves the last `settle_s` seconds for later."""
    now = datetime.now(UTC)
    clock = {"now": now}
    config = config_for(sqlite_db, _url(sqlite_db), settle_s=60)
    collector = harness.collector(config, db_clock=lambda: clock["now"])
    await collector.poll_sessions()
    late = replace(
        next(iter(sqlite_db.sessions.values())),
        session_id=str(uuid.uuid4()),
        updated_at=now - timedelta(seconds=30),  # stamped before the poll, committed after
    )
    sqlite_db.add([late])
    clock["now"] = now + timedelta(seconds=100)
    assert await collector.poll_sessions() == 1
    assert late.session_id in await harness.ledger()
    await collector.close()


async def test_corrections_between_polls_update_ledger_and_totals(sqlite_db, harness) -> None:
    """Sessions corrected upstream between polls are read again and re-judged: their stored
    energy and their month's total change; no ledger row or point is added."""
    collector = harness.collector(config_for(sqlite_db, _url(sqlite_db)))
    await collector.poll_sessions()
    accepted = [sid for sid, row in (await harness.ledger()).items() if row["accepted"]]
    target = sqlite_db.sessions[accepted[0]]
    month = (await harness.ledger())[target.session_id]["month"]

    def totals(conn):
        return sum(t.energy_kwh for t in month_totals(conn, month))

    before = await harness.db.run(totals)
    fixed = sqlite_db.correct([target.session_id], factor=0.5)[0]
    new = make_sessions(sqlite_db.fleet, 5, seed=99, start=datetime.now(UTC) - timedelta(days=1))
    sqlite_db.add([replace(s, updated_at=datetime.now(UTC)) for s in new])
    assert await collector.poll_sessions() == 6
    ledger = await harness.ledger()
    assert len(ledger) == len(sqlite_db.sessions)
    assert ledger[target.session_id]["energy_kwh"] == fixed.energy_kwh
    after = await harness.db.run(totals)
    assert after == pytest.approx(before - (target.energy_kwh - fixed.energy_kwh))
    await collector.close()


async def test_statuses_become_points_tagged_with_station_and_unit(
    sqlite_db, harness, tmp_path: Path
) -> None:
    """Statuses of the configured units become `qualicharge_status` points; the next poll asks
    only for statuses since the latest one seen."""
    from collectors.qualicharge.status_api import StatusApi, run_status_api

    api = StatusApi(sqlite_db.fleet, operational_units=sqlite_db.fleet.operational_units)
    async with run_status_api(api) as base_url:
        config = config_for(
            sqlite_db,
            _url(sqlite_db),
            operational_units=sqlite_db.fleet.operational_units[:2],
            api={"base_url": base_url, "username": api.username, "password": api.password},
        )
        collector = harness.collector(config)
        count = await collector.poll_statuses()
        points = [p for p in await harness.committed() if p.measurement == "qualicharge_status"]
        assert count == len(points) > 0
        units = set(config.operational_units)
        assert {p.tags["operational_unit"] for p in points} <= units
        sample = points[0]
        pdc = next(p for p in sqlite_db.fleet.pdcs if p.id_pdc_itinerance == sample.tags["pdc"])
        assert sample.tags["station"] == pdc.id_station_itinerance
        assert sample.fields["in_service"] == int(sample.fields["etat_pdc"] == "en_service")
        since = await harness.checkpoints.get("statuses_since")
        assert api.requests[-1] == {}
        await collector.poll_statuses()
        assert api.requests[-1] == {"from": [datetime.fromisoformat(since).isoformat()]}
        await collector.close()


async def test_database_down_is_upstream_error_without_password(harness: Harness) -> None:
    """An unreachable database fails the poll with UpstreamError; the password stays hidden."""
    from collectors.qualicharge.config import QualiChargeConfig

    config = QualiChargeConfig(
        database_url="postgresql+psycopg://reader:s3cr3t-pw@127.0.0.1:9/qc?connect_timeout=2",
        operational_units=["FRABC"],
    )
    collector = harness.collector(config)
    with pytest.raises(UpstreamError) as caught:
        await collector.poll_sessions()
    assert "s3cr3t-pw" not in str(caught.value)
    await collector.close()


async def test_missing_tables_are_a_data_error(harness: Harness, tmp_path: Path) -> None:
    """A database without QualiCharge's tables is reported as such, not retried forever."""
    from collectors.qualicharge.config import QualiChargeConfig

    config = QualiChargeConfig(
        database_url=f"sqlite:///{tmp_path / 'empty.sqlite'}", operational_units=["FRABC"]
    )
    collector = harness.collector(config)
    with pytest.raises(DataError, match=r"session|no such table"):
        await collector.poll_sessions()
    await collector.close()


async def test_demo_hook_yields_a_working_config(tmp_path: Path, harness: Harness, http) -> None:
    """The demo hook starts the simulator and yields a config block that validates and polls."""
    assert PLUGIN.demo is not None
    env = DemoEnv(tmp_path / "demo", http, {"qualicharge": {"pdcs": 10, "sessions": 300}})
    async with PLUGIN.demo(env) as block:
        config = PLUGIN.config_model.model_validate(block)
        collector = PLUGIN.create(config, harness.ctx)
        assert await collector.poll_sessions() == 300
        assert await collector.poll_statuses() > 0
        await collector.close()
