"""The exclusion engine as a judge: points, ledger, monthly totals, restarts, late sessions."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from collectors.qualicharge.fake import make_fleet, make_sessions
from daemon.checks.rules import DUPS, OVLP, SessionRulesConfig
from daemon.checks.store import month_totals
from daemon.emitter import Emitter
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import parse, split_lines
from daemon.sessions import session_offset_ns
from daemon.state import Checkpoints, StateDB
from tests.checks.conftest import Runner, latest
from tests.checks.seed_reference import frame, reference_flags
from tests.checks.test_session_rules import T0, session


async def test_points_one_per_session_and_one_anomaly_per_rule(runner: Runner) -> None:
    """Each session gets a charging_session point at start + its offset, `accepted` false when
    flagged, and one anomaly point per rule hit with the same offset and the other session."""
    first = session("a")
    twin = session("b", energy=1500.0)  # DUPS + OVLP + ENEU + ENEA + ENEX
    points = await runner.feed([first, twin])
    charging = {p.fields["session_id"]: p for p in points if p.measurement == "charging_session"}
    assert charging["a"].fields["accepted"] is True
    assert charging["b"].fields["accepted"] is False
    stamp = int(T0.timestamp()) * 1_000_000_000
    assert charging["b"].time_ns == stamp + session_offset_ns("b")
    anomalies = [p for p in points if p.measurement == "anomaly"]
    assert sorted(p.tags["rule"] for p in anomalies) == ["DUPS", "ENEA", "ENEU", "ENEX", "OVLP"]
    for point in anomalies:
        assert point.time_ns == stamp + session_offset_ns("b")
        assert point.tags["subject"] == "FRABCE0000011"
        assert point.tags["station"] == "FRABCP000001"
        assert point.fields["session_id"] == "b"
    by_rule = {p.tags["rule"]: p for p in anomalies}
    assert "session a" in str(by_rule["DUPS"].fields["detail"])
    assert by_rule["OVLP"].fields["value"] == 3600.0
    assert by_rule["ENEU"].fields["threshold"] == 1000.0


async def test_late_session_is_judged_between_its_true_neighbours(runner: Runner) -> None:
    """A session arriving after its successor is judged against its predecessor, and the
    successor is re-judged (a new point with the new verdict) and its ledger row updated."""
    await runner.feed([session("a"), session("c", start=T0 + timedelta(minutes=100))])
    points = await runner.feed([session("b", start=T0 + timedelta(minutes=30), minutes=90)])
    assert runner.final_flags() == {"a": 0, "b": OVLP, "c": OVLP}
    rewritten = {p.fields["session_id"] for p in points if p.measurement == "charging_session"}
    assert rewritten == {"b", "c"}
    ledger = await runner.ledger()
    assert ledger["c"]["flags"] == OVLP and ledger["c"]["accepted"] == 0


async def test_correction_clears_what_no_longer_applies(runner: Runner) -> None:
    """An energy correction re-judges the session: the anomaly that vanished is rewritten as
    cleared at the same series and time, the session point is overwritten, not duplicated."""
    await runner.feed([session("a", energy=30.0)])  # ENEA: 22 kWh possible
    fixed = replace(session("a", energy=12.0), updated_at=T0 + timedelta(days=1))
    points = await runner.feed([fixed])
    assert runner.final_flags() == {"a": 0}
    cleared = [p for p in points if p.measurement == "anomaly"]
    assert [p.tags["rule"] for p in cleared] == ["ENEA"]
    assert str(cleared[0].fields["detail"]).startswith("cleared:")
    kept = latest(runner.points)
    assert len(kept) == 1
    (only,) = kept.values()
    assert only.fields["energy_kwh"] == 12.0 and only.fields["accepted"] is True


async def test_correction_moving_the_start_tombstones_the_old_point(runner: Runner) -> None:
    """A correction that moves the start leaves a zero-energy, not-accepted point at the old
    time (InfluxDB cannot delete) and writes the session at its new time."""
    await runner.feed([session("a")])
    moved = replace(session("a", start=T0 + timedelta(hours=2)), updated_at=T0 + timedelta(days=1))
    await runner.feed([moved])
    kept = latest(runner.points)
    assert len(kept) == 2
    by_energy = sorted(kept.values(), key=lambda p: p.fields["energy_kwh"])
    assert by_energy[0].fields == {**by_energy[0].fields, "energy_kwh": 0.0, "accepted": False}
    assert by_energy[1].fields["energy_kwh"] == 10.0 and by_energy[1].fields["accepted"] is True
    assert len(await runner.ledger()) == 1


async def test_stale_version_is_ignored(runner: Runner) -> None:
    """A replayed older version (earlier `updated_at`) does not undo a correction."""
    new = replace(session("a", energy=12.0), updated_at=T0 + timedelta(days=2))
    old = replace(session("a", energy=30.0), updated_at=T0 + timedelta(days=1))
    await runner.feed([new])
    assert await runner.feed([old]) == []
    assert (await runner.ledger())["a"]["energy_kwh"] == 12.0


async def test_month_totals_follow_corrections_exactly(runner: Runner) -> None:
    """Monthly totals (Europe/Paris month of the start) sum accepted energy; a correction
    changes the total instead of adding to it, and an exclusion moves energy to `excluded`."""
    late_march = datetime(2025, 3, 31, 22, 30, tzinfo=UTC)  # already April in Paris
    await runner.feed(
        [
            session("a", start=late_march, energy=10.1),
            session("b", start=late_march + timedelta(hours=5), energy=0.2),
            session("c", start=datetime(2025, 3, 15, tzinfo=UTC), energy=3.3),
        ]
    )
    april = await runner.db.run(lambda conn: month_totals(conn, "2025-04"))
    assert [(t.station, t.energy_kwh, t.sessions, t.excluded) for t in april] == [
        ("FRABCP000001", 10.3, 2, 0)
    ]
    fix = replace(session("a", start=late_march, energy=11.7), updated_at=late_march)
    over = replace(session("b", start=late_march + timedelta(hours=5), energy=5000.0))
    await runner.feed([fix, over])
    april = await runner.db.run(lambda conn: month_totals(conn, "2025-04"))
    assert [(t.energy_kwh, t.sessions, t.excluded, t.excluded_kwh) for t in april] == [
        (11.7, 1, 1, 5000.0)
    ]
    march = await runner.db.run(lambda conn: month_totals(conn, "2025-03"))
    assert [(t.energy_kwh, t.sessions) for t in march] == [(3.3, 1)]


async def test_totals_equal_the_ledger_after_random_corrections(runner: Runner) -> None:
    """After many corrections the monthly table equals a fresh sum over the ledger."""
    fleet = make_fleet(10, seed=21)
    sessions = make_sessions(fleet, 800, seed=22, start=datetime(2025, 1, 20, tzinfo=UTC), days=40)
    await runner.feed(sessions, batch=97)
    rng = random.Random(3)
    fixes = [
        replace(s, energy_kwh=round(s.energy_kwh * rng.uniform(0.1, 30), 3), updated_at=T0)
        for s in rng.sample(sessions, 200)
    ]
    await runner.feed(fixes, batch=33)

    def compare(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
        totals = conn.execute(
            "SELECT month, station, energy_ukwh, sessions, excluded FROM session_month "
            "ORDER BY 1, 2"
        ).fetchall()
        fresh = conn.execute(
            "SELECT month, station, SUM(accepted * energy_ukwh), SUM(accepted), "
            "SUM(1 - accepted) FROM session_ledger GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        return totals, fresh

    totals, fresh = await runner.db.run(compare)
    assert totals == fresh and len(totals) > 5


async def test_restart_resumes_from_the_ledger(db: StateDB) -> None:
    """A new engine on the same state database judges new sessions against the old ones."""
    fleet = make_fleet(15, seed=31)
    sessions = make_sessions(fleet, 1200, seed=32)
    first = Runner(db, SessionRulesConfig())
    await first.start()
    await first.feed(sessions[::2])
    second = Runner(db, SessionRulesConfig())
    await second.start()
    await second.feed(sessions[1::2])
    expected = reference_flags(frame(sessions))
    ledger = await second.ledger()
    assert {sid: row["flags"] for sid, row in ledger.items()} == expected


async def test_session_older_than_memory_recalls_neighbours_from_the_ledger(db: StateDB) -> None:
    """With a one-day memory, a session from weeks ago is judged against neighbours read back
    from the ledger, and the session after it is re-judged."""
    config = SessionRulesConfig(horizon_days=1)
    runner = Runner(db, config)
    await runner.start()
    day = timedelta(days=1)
    old = [session(f"o{i}", start=T0 + i * day) for i in range(30)]
    await runner.feed(old, batch=3)
    assert runner.engine is not None
    assert runner.engine.remembered("qualicharge") < 10  # the old days were forgotten
    late = session("late", start=T0 + 5 * day + timedelta(minutes=20), minutes=60 * 24)
    await runner.feed([late])
    assert runner.final_flags()["late"] == OVLP
    ledger = await runner.ledger()
    assert ledger["o6"]["flags"] == OVLP  # starts before "late" ends
    assert ledger["o5"]["flags"] == 0
    twin = session("o3x", start=T0 + 3 * day, energy=10.0)  # duplicate of o3, id after it
    await runner.feed([twin])
    assert runner.final_flags()["o3x"] == DUPS | OVLP


async def test_engine_disabled_accepts_everything_but_keeps_the_ledger(db: StateDB) -> None:
    """`enabled: false` accepts every session and still records them for the rollup."""
    runner = Runner(db, SessionRulesConfig(enabled=False))
    await runner.start()
    points = await runner.feed([session("a", energy=5000.0), session("b", energy=5000.0)])
    assert all(p.fields["accepted"] for p in points if p.measurement == "charging_session")
    assert not [p for p in points if p.measurement == "anomaly"]
    assert len(await runner.ledger()) == 2


async def test_points_ledger_and_checkpoint_commit_together(tmp_path) -> None:
    """Through the emitter, points, ledger rows and the checkpoint land in one transaction;
    a failing transaction leaves none of them, and the retried batch then stores all."""
    db = StateDB(tmp_path / "state.db")
    engine = Runner(db, SessionRulesConfig())
    judge = await engine.start()
    outbox = Outbox(db, Counters("outbox"))
    await outbox.start()
    checkpoints = Checkpoints(db, "qualicharge")
    emitter = Emitter("qualicharge", outbox, checkpoints, Counters("qualicharge"), judge)
    batch = [session("a", energy=30.0), session("b", start=T0 + timedelta(hours=3))]

    def boom(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    broken = Checkpoints(db, "qualicharge")
    broken.write = lambda conn, key, value: boom(conn)  # type: ignore[method-assign]
    failing = Emitter("qualicharge", outbox, broken, Counters("qualicharge"), judge)
    try:
        await failing.sessions(batch, checkpoint={"watermark": "w1"})
    except sqlite3.OperationalError:
        pass
    else:
        raise AssertionError("the commit should have failed")
    assert await engine.ledger() == {}
    assert await checkpoints.get("watermark") is None
    assert await outbox.read_batch(1000) is None
    await emitter.sessions(batch, checkpoint={"watermark": "w1"})
    assert set(await engine.ledger()) == {"a", "b"}
    assert await checkpoints.get("watermark") == "w1"
    stored = await outbox.read_batch(1000)
    assert stored is not None
    lines = [parse(line) for line in split_lines(stored.body.decode())]
    kinds = sorted((p.measurement, p.tags.get("rule", "")) for p in lines)
    assert kinds == [("anomaly", "ENEA"), ("charging_session", ""), ("charging_session", "")]
    await outbox.close()
    db.close()


async def test_session_moved_into_memory_from_the_forgotten_past(db: StateDB) -> None:
    """A correction moving a forgotten session (older than memory) to a recent start is not
    known in memory; the ledger write finds its stored row, so totals move, not double."""
    runner = Runner(db, SessionRulesConfig(horizon_days=1))
    await runner.start()
    day = timedelta(days=1)
    await runner.feed([session(f"o{i}", start=T0 + i * day, energy=5.0) for i in range(40)], 4)
    moved = replace(
        session("o0", start=T0 + 39 * day + timedelta(hours=5), energy=7.0),
        updated_at=T0 + 50 * day,
    )
    await runner.feed([moved])
    ledger = await runner.ledger()
    assert len(ledger) == 40 and ledger["o0"]["energy_kwh"] == 7.0

    def sums(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
        totals = conn.execute(
            "SELECT month, energy_ukwh, sessions FROM session_month ORDER BY 1"
        ).fetchall()
        fresh = conn.execute(
            "SELECT month, SUM(energy_ukwh), COUNT(*) FROM session_ledger GROUP BY 1 ORDER BY 1"
        ).fetchall()
        return totals, fresh

    totals, fresh = await db.run(sums)
    assert totals == fresh


async def test_judging_leaves_the_event_loop_free(runner: Runner, monkeypatch) -> None:
    """A page is judged off the event loop: other tasks (sinks, websockets, timers) run while
    it is judged. The judging below waits for the loop to tick, which it never would if the
    judging ran on the loop itself."""
    engine = runner.engine
    assert engine is not None
    ticks = 0
    seen: list[bool] = []
    judge_batch = engine._judge_batch

    def waiting(*args, **kwargs):
        start = ticks
        deadline = time.monotonic() + 5
        while ticks == start and time.monotonic() < deadline:
            time.sleep(0.001)
        seen.append(ticks > start)
        return judge_batch(*args, **kwargs)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(engine, "_judge_batch", waiting)
    task = asyncio.create_task(ticker())
    try:
        points = await runner.feed([session("a"), session("b", start=T0 + timedelta(hours=2))])
    finally:
        task.cancel()
    assert seen == [True]
    assert {p.fields["session_id"] for p in points} == {"a", "b"}


async def test_a_cancelled_judgement_holds_its_source_until_its_thread_ends(
    runner: Runner, monkeypatch
) -> None:
    """Cancelling `judge()` while its thread runs does not let another judgement of the same
    source into the memory before that thread is done."""
    engine = runner.engine
    assert engine is not None
    judge_batch = engine._judge_batch
    entered = [threading.Event(), threading.Event()]
    release = threading.Event()
    inside: list[int] = []
    most = 0

    def tracked(*args, **kwargs):
        nonlocal most
        inside.append(1)
        most = max(most, len(inside))
        entered[1 if entered[0].is_set() else 0].set()
        try:
            release.wait(10)
            return judge_batch(*args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(engine, "_judge_batch", tracked)
    first = asyncio.create_task(engine.judge("qualicharge", [session("a")]))
    assert await asyncio.to_thread(entered[0].wait, 10)
    first.cancel()
    second = asyncio.create_task(
        engine.judge("qualicharge", [session("b", start=T0 + timedelta(hours=2))])
    )
    # the second judgement must not reach its thread while the first one's still runs
    assert not await asyncio.to_thread(entered[1].wait, 0.5)
    assert not first.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert entered[1].is_set() and most == 1
