"""The columnar session ledger store: round trips, exact monthly totals, migration."""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.checks import columns, store
from daemon.records import NO_TIME, ChargingSession, SessionBatch
from daemon.state import in_transaction
from tests.checks import row_ledger

T = TypeVar("T")
PARIS = ZoneInfo("Europe/Paris")
S = 1_000_000_000


def connect(path: Path) -> sqlite3.Connection:
    """A connection set up as `daemon.state.StateDB` sets it up."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=FAST")
    return conn


tx = in_transaction


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    made = connect(tmp_path / "state.db")
    store.ensure_schema(made)
    yield made
    made.close()


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * S


def session(sid: str, start: str = "2026-03-10T10:00:00+00:00", **changes: Any) -> ChargingSession:
    begin = datetime.fromisoformat(start)
    fields: dict[str, Any] = {
        "source": "qualicharge",
        "session_id": sid,
        "pdc": "FRABCP001",
        "station": "FRABCS01",
        "operational_unit": "FRABC",
        "siren": "123456789",
        "start": begin,
        "end": begin.replace(hour=(begin.hour + 1) % 24),
        "energy_kwh": 12.5,
        "max_power_kw": 22.0,
        "updated_at": None,
        "entity": "Op",
    }
    fields.update(changes)
    return ChargingSession(**fields)


def write(
    conn: sqlite3.Connection,
    sessions: list[ChargingSession],
    flags: list[int] | None = None,
    known: list[bool] | None = None,
    source: str = "qualicharge",
) -> None:
    batch = SessionBatch.from_sessions(source, sessions)
    bits = np.asarray(flags if flags is not None else [0] * len(sessions), np.int64)
    seen = np.asarray(known if known is not None else [False] * len(sessions), bool)
    tx(conn, lambda c: store.write_verdicts(c, batch, bits, seen))


def view(conn: sqlite3.Connection, source: str | None = None) -> dict[tuple[str, str], dict]:
    cursor = conn.execute("SELECT * FROM session_ledger")
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {
        (row["source"], row["session_id"]): row
        for row in rows
        if source is None or row["source"] == source
    }


def assert_totals_match_view(conn: sqlite3.Connection) -> None:
    """`session_month` equals the sum over the ledger, with no empty rows."""
    months = conn.execute(
        "SELECT source, month, siren, operational_unit, station, energy_ukwh, sessions, "
        "excluded, excluded_ukwh FROM session_month ORDER BY 1, 2, 3, 4, 5"
    ).fetchall()
    summed = conn.execute(
        "SELECT source, month, siren, operational_unit, station, "
        "SUM(CASE WHEN accepted THEN energy_ukwh ELSE 0 END), SUM(accepted), "
        "SUM(1 - accepted), SUM(CASE WHEN accepted THEN 0 ELSE energy_ukwh END) "
        "FROM session_ledger GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    ).fetchall()
    assert months == summed


def same_float(a: float | None, b: float) -> bool:
    if a is None:
        return math.isnan(b)
    return a == b or (math.isnan(a) and math.isnan(b))


def test_view_has_the_historical_columns(conn: sqlite3.Connection) -> None:
    """The view keeps the columns (and their order) of the former ledger table."""
    cursor = conn.execute("SELECT * FROM session_ledger")
    assert [column[0] for column in cursor.description] == [
        "source",
        "session_id",
        "pdc",
        "station",
        "operational_unit",
        "siren",
        "entity",
        "start_ns",
        "end_ns",
        "energy_kwh",
        "energy_ukwh",
        "max_power_kw",
        "month",
        "flags",
        "accepted",
        "source_updated_ns",
        "updated_at",
    ]


def test_round_trip_of_every_column(conn: sqlite3.Connection) -> None:
    """What is written reads back unchanged through read_since, read_range, locate, the view."""
    updated = datetime(2026, 4, 2, 8, 30, 0, 123456, tzinfo=UTC)
    sessions = [
        session("a", updated_at=updated),
        session("b", "2026-03-31T22:30:00+00:00", energy_kwh=math.nan, max_power_kw=math.inf),
        session("é-日本-𝄞", "2026-03-31T21:59:59+00:00", pdc="FRABCP002", entity=""),
        session("x" * 200, "2026-03-11T10:00:00+00:00", energy_kwh=0.0000025, station="FRABCS02"),
        session("", "2026-03-12T10:00:00.000001+00:00", energy_kwh=-3.25, max_power_kw=math.nan),
    ]
    flags = [0, 64, 3, 0, 1]
    before = datetime.now(UTC).timestamp()
    write(conn, sessions, flags)

    batch, read_flags = store.read_since(conn, "qualicharge", 0)
    assert len(batch) == len(sessions)
    got = {
        row.session_id: (row, bits)
        for row, bits in zip(batch.sessions(), read_flags.tolist(), strict=True)
    }
    for original, bits in zip(sessions, flags, strict=True):
        row, read_bits = got[original.session_id]
        assert read_bits == bits
        for name in ("pdc", "station", "operational_unit", "siren", "entity", "start", "end"):
            assert getattr(row, name) == getattr(original, name)
        assert row.updated_at == original.updated_at
        assert same_float(row.energy_kwh, original.energy_kwh)
        assert same_float(row.max_power_kw, original.max_power_kw)

    rows = view(conn)
    a = rows[("qualicharge", "a")]
    assert a["month"] == "2026-03" and a["accepted"] == 1 and a["flags"] == 0
    assert a["energy_ukwh"] == 12_500_000 and a["energy_kwh"] == 12.5
    assert a["source_updated_ns"] == int(updated.timestamp()) * S + 123456000
    assert before - 1 <= a["updated_at"] <= datetime.now(UTC).timestamp() + 1
    b = rows[("qualicharge", "b")]
    assert b["month"] == "2026-04"  # 00:30 in Paris (CEST), 1 April
    assert b["accepted"] == 0 and b["energy_kwh"] is None and b["energy_ukwh"] == 0
    assert b["max_power_kw"] == math.inf and b["source_updated_ns"] is None
    assert rows[("qualicharge", "é-日本-𝄞")]["month"] == "2026-03"  # 23:59:59 in Paris
    assert rows[("qualicharge", "x" * 200)]["energy_ukwh"] == round(0.0000025 * 1e6)
    assert rows[("qualicharge", "")]["energy_ukwh"] == -3_250_000

    ranged, ranged_flags = store.read_range(
        conn, "qualicharge", ["FRABCP001"], ns("2026-03-11T10:00:00+00:00"), ns("2026-04-01")
    )
    assert sorted(ranged.session_id) == ["", "b", "x" * 200]
    assert sorted(ranged_flags.tolist()) == [0, 1, 64]
    assert store.read_range(conn, "qualicharge", ["FRABCP002", "nope"], 0, 2**62)[0].session_id == [
        "é-日本-𝄞"
    ]
    assert store.locate(conn, "qualicharge", ["a", "é-日本-𝄞", "missing", "x" * 200]) == {
        "a": ("FRABCP001", ns("2026-03-10T10:00:00+00:00")),
        "é-日本-𝄞": ("FRABCP002", ns("2026-03-31T21:59:59+00:00")),
        "x" * 200: ("FRABCP001", ns("2026-03-11T10:00:00+00:00")),
    }
    assert store.locate(conn, "other", ["a"]) == {}
    assert_totals_match_view(conn)


def test_neighbour_queries(conn: sqlite3.Connection) -> None:
    """last_start_before and latest_starts answer per charge point and per source."""
    write(
        conn,
        [
            session("a", "2026-03-10T10:00:00+00:00"),
            session("b", "2026-03-12T10:00:00+00:00"),
            session("c", "2026-03-11T10:00:00+00:00", pdc="FRABCP002"),
        ],
    )
    write(conn, [session("a", "2026-05-01T10:00:00+00:00")], source="other")
    at = ns("2026-03-12T10:00:00+00:00")
    assert store.last_start_before(conn, "qualicharge", "FRABCP001", at) == ns(
        "2026-03-10T10:00:00+00:00"
    )
    assert store.last_start_before(conn, "qualicharge", "FRABCP001", at + 1) == at
    assert store.last_start_before(conn, "qualicharge", "FRABCP001", at - at) is None
    assert store.last_start_before(conn, "qualicharge", "unknown", at) is None
    assert store.latest_starts(conn) == {
        "qualicharge": at,
        "other": ns("2026-05-01T10:00:00+00:00"),
    }
    since, _ = store.read_since(conn, "qualicharge", ns("2026-03-11T10:00:00+00:00"))
    assert sorted(since.session_id) == ["b", "c"]


def test_two_sources_with_the_same_session_id_stay_separate(conn: sqlite3.Connection) -> None:
    """A session id is unique per source only: each source keeps its own row and totals."""
    write(conn, [session("same", energy_kwh=1.0)], source="one")
    write(conn, [session("same", energy_kwh=2.0)], source="two")
    write(conn, [session("same", energy_kwh=3.0)], known=[True], source="one")
    rows = view(conn)
    assert rows[("one", "same")]["energy_ukwh"] == 3_000_000
    assert rows[("two", "same")]["energy_ukwh"] == 2_000_000
    totals = {t.source: t.energy_kwh for t in store.month_totals(conn, "2026-03")}
    assert totals == {"one": 3.0, "two": 2.0}
    assert store.month_totals(conn, "2026-03", sources=["two"])[0].sessions == 1
    assert_totals_match_view(conn)


def test_replay_of_stored_rows_is_not_counted_twice(conn: sqlite3.Connection) -> None:
    """A stored session passed as new (a replay after a crash) replaces its row."""
    write(conn, [session("a"), session("b")])
    write(conn, [session("a", energy_kwh=20.0), session("c")], flags=[64, 0], known=[False] * 2)
    (total,) = store.month_totals(conn, "2026-03")
    assert (total.sessions, total.excluded, total.energy_kwh, total.excluded_kwh) == (
        2,
        1,
        25.0,
        20.0,
    )
    assert len(view(conn)) == 3
    assert_totals_match_view(conn)


def test_a_rolled_back_write_leaves_no_key_behind(conn: sqlite3.Connection) -> None:
    """The session id table rolls back with the transaction: a session whose write failed is
    new afterwards, and the row numbers the failed write used are not mistaken for it."""
    write(conn, [session("a")])

    def fail(c: sqlite3.Connection) -> None:
        store.write_verdicts(
            c,
            SessionBatch.from_sessions("qualicharge", [session("b", energy_kwh=5.0)]),
            np.zeros(1, np.int64),
            np.zeros(1, bool),
        )
        raise RuntimeError("the outbox commit failed")

    with pytest.raises(RuntimeError):
        tx(conn, fail)
    write(conn, [session("c", energy_kwh=7.0)])  # takes the row number "b" had
    write(conn, [session("b", energy_kwh=6.0)])
    assert {sid: row["energy_kwh"] for (_, sid), row in view(conn).items()} == {
        "a": 12.5,
        "b": 6.0,
        "c": 7.0,
    }
    (total,) = store.month_totals(conn, "2026-03")
    assert (total.sessions, total.energy_kwh) == (3, 25.5)
    assert_totals_match_view(conn)


def test_a_new_connection_finds_the_stored_sessions(tmp_path: Path) -> None:
    """The session id table is the connection's own: rebuilt from the file on the next
    start, a correction after a restart replaces its session instead of adding one."""
    first = connect(tmp_path / "state.db")
    store.ensure_schema(first)
    write(first, [session("a"), session("b", energy_kwh=1.0)])
    # the index the previous version kept on disk
    first.execute("CREATE INDEX ledger_session_key ON ledger_session (key)")
    first.close()

    again = connect(tmp_path / "state.db")
    store.ensure_schema(again)
    write(again, [session("b", energy_kwh=3.0)])
    assert store.locate(again, "qualicharge", ["a", "z"]) == {
        "a": ("FRABCP001", ns("2026-03-10T10:00:00+00:00"))
    }
    (total,) = store.month_totals(again, "2026-03")
    assert (total.sessions, total.energy_kwh) == (2, 15.5)
    assert len(view(again)) == 2
    assert_totals_match_view(again)
    indexes = {row[0] for row in again.execute("SELECT name FROM sqlite_master")}
    assert "ledger_session_key" not in indexes  # the previous version's index is dropped
    again.close()


def test_repeated_id_in_one_batch_keeps_the_last_row(conn: sqlite3.Connection) -> None:
    write(conn, [session("a", energy_kwh=1.0), session("a", energy_kwh=2.0)])
    assert view(conn)[("qualicharge", "a")]["energy_kwh"] == 2.0
    assert_totals_match_view(conn)


def test_hash_collisions_are_told_apart(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every id sharing one key: the full id decides, nothing is merged or lost."""
    monkeypatch.setattr(columns, "session_keys", lambda source, ids: np.zeros(len(ids), np.int64))
    write(conn, [session("a"), session("b", energy_kwh=1.0)])
    write(conn, [session("a", energy_kwh=2.0), session("c", energy_kwh=4.0)], known=[True, False])
    rows = view(conn)
    assert {sid: row["energy_kwh"] for (_, sid), row in rows.items()} == {
        "a": 2.0,
        "b": 1.0,
        "c": 4.0,
    }
    assert store.locate(conn, "qualicharge", ["b", "z"]) == {
        "b": ("FRABCP001", ns("2026-03-10T10:00:00+00:00"))
    }
    assert_totals_match_view(conn)


def test_session_keys_are_stable() -> None:
    """Keys are stored: the same id gives the same key whatever batch it comes in."""
    ids = ["a", "", "abc", "0d5f7c1e-2a5b-4c8e-9f1a-3b6d8e2f4a10", "é" * 70, "日本"]
    alone = [int(columns.session_keys("qc", [sid])[0]) for sid in ids]
    assert columns.session_keys("qc", ids).tolist() == alone
    assert columns.session_keys("qc", ids[::-1]).tolist() == alone[::-1]
    assert len(set(alone)) == len(ids)
    assert all(abs(key) < 2**62 for key in alone)
    assert columns.session_keys("other", ids[:1]).tolist() != alone[:1]
    # Pinned values: changing the function would orphan every stored row.
    assert alone[3] == int(columns.session_keys("qc", [ids[3]])[0])
    assert columns.session_keys("qualicharge", ["a", "0d5f7c1e"]).tolist() == PINNED


PINNED = [-774719748841646183, -1842001907581122749]


@given(st.lists(st.integers(ns("1990-01-01"), ns("2200-01-01")), max_size=50))
def test_month_labels_follow_paris_time(starts: list[int]) -> None:
    array = np.asarray(starts, np.int64)
    expected = []
    for value in starts:
        local = datetime.fromtimestamp(value // S, UTC).astimezone(PARIS)
        expected.append(local.year * 100 + local.month)
    assert columns.month_labels(array).tolist() == expected


# Start instants around Paris month boundaries and DST changes (UTC).
_EDGES = [
    ns(text)
    for text in (
        "2026-03-29T00:59:59+00:00",  # DST starts at 01:00 UTC
        "2026-03-29T01:00:00+00:00",
        "2026-03-31T21:59:59+00:00",  # 1 April 00:00 CEST is 31 March 22:00 UTC
        "2026-03-31T22:00:00+00:00",
        "2026-10-25T00:59:59+00:00",  # DST ends at 01:00 UTC
        "2026-10-25T01:00:00+00:00",
        "2026-10-31T22:59:59+00:00",  # 1 November 00:00 CET is 31 October 23:00 UTC
        "2026-10-31T23:00:00+00:00",
        "2026-12-31T22:59:59+00:00",
        "2026-12-31T23:00:00+00:00",
    )
]

_version = st.fixed_dictionaries(
    {
        "sid": st.sampled_from(["s1", "s2", "s3", "s4", "s5", "s6"]),
        "source": st.sampled_from(["qualicharge", "other"]),
        "pdc": st.sampled_from(["P1", "P2"]),
        "station": st.sampled_from(["FRABCS1", "FRABCS2"]),
        "unit": st.sampled_from(["FRABC", "FRXYZ"]),
        "siren": st.sampled_from(["123456789", "987654321"]),
        "start": st.sampled_from(_EDGES) | st.integers(_EDGES[0], _EDGES[-1]),
        "energy": st.floats(-5, 500, allow_nan=False) | st.sampled_from([math.nan, math.inf]),
        "power": st.sampled_from([7.4, 22.0, math.nan]),
        "flags": st.sampled_from([0, 0, 1, 64]),
        "updated": st.none() | st.integers(0, 2**61),
        "replay_as_new": st.booleans(),
    }
)


def _place_codes(versions: list[dict]) -> np.ndarray:
    """A code per distinct (pdc, station, unit, SIREN), numbered from 1 in steps of 3."""
    codes: dict[tuple[str, ...], int] = {}
    places = [(v["pdc"], v["station"], v["unit"], v["siren"]) for v in versions]
    return np.asarray([codes.setdefault(place, 1 + 3 * len(codes)) for place in places])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_version, min_size=1, max_size=8), min_size=1, max_size=6), st.booleans())
def test_month_totals_equal_the_ledger_after_any_writes(
    batches: list[list[dict]], coded: bool
) -> None:
    """Inserts, corrections (energy, start across months, station, unit, verdict) and replays
    flagged new, in batches with place codes or without: session_month always equals the sum
    over the ledger, which holds the latest version of every session."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = connect(Path(tmp) / "state.db")
        store.ensure_schema(conn)
        model: dict[tuple[str, str], dict] = {}
        try:
            for versions in batches:
                for source in ("qualicharge", "other"):
                    mine = [v for v in versions if v["source"] == source]
                    if not mine:
                        continue
                    batch = SessionBatch(
                        source=source,
                        session_id=[v["sid"] for v in mine],
                        pdc=[v["pdc"] for v in mine],
                        station=[v["station"] for v in mine],
                        operational_unit=[v["unit"] for v in mine],
                        siren=[v["siren"] for v in mine],
                        entity=["E"] * len(mine),
                        start_ns=np.asarray([v["start"] for v in mine], np.int64),
                        end_ns=np.asarray([v["start"] + 3600 * S for v in mine], np.int64),
                        energy_kwh=np.asarray([v["energy"] for v in mine], np.float64),
                        max_power_kw=np.asarray([v["power"] for v in mine], np.float64),
                        updated_ns=np.asarray(
                            [NO_TIME if v["updated"] is None else v["updated"] for v in mine],
                            np.int64,
                        ),
                        place_codes=_place_codes(mine) if coded else None,
                    )
                    flags = np.asarray([v["flags"] for v in mine], np.int64)
                    known = np.asarray(
                        [(source, v["sid"]) in model and not v["replay_as_new"] for v in mine]
                    )
                    tx(conn, lambda c, b=batch, f=flags, k=known: store.write_verdicts(c, b, f, k))
                    for v in mine:
                        model[(source, v["sid"])] = v
                assert_totals_match_view(conn)
            rows = view(conn)
            assert set(rows) == set(model)
            for key, v in model.items():
                row = rows[key]
                local = datetime.fromtimestamp(v["start"] // S, UTC).astimezone(PARIS)
                assert row["month"] == f"{local.year:04d}-{local.month:02d}"
                assert (row["pdc"], row["station"], row["operational_unit"], row["siren"]) == (
                    v["pdc"],
                    v["station"],
                    v["unit"],
                    v["siren"],
                )
                assert row["start_ns"] == v["start"] and row["flags"] == v["flags"]
                assert row["accepted"] == (v["flags"] == 0)
                energy = v["energy"]
                assert row["energy_ukwh"] == (round(energy * 1e6) if math.isfinite(energy) else 0)
                assert same_float(row["energy_kwh"], energy)
                assert same_float(row["max_power_kw"], v["power"])
                assert row["source_updated_ns"] == v["updated"]
            points = conn.execute("SELECT COUNT(*) FROM ledger_point").fetchone()[0]
            assert points <= 2 * 2 * 2 * 2 * 2 * 3  # dictionary entries are reused
        finally:
            conn.close()


# The previous version's table, exactly as it created it (the format a state dir may hold).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_ledger (
    source TEXT NOT NULL, session_id TEXT NOT NULL, pdc TEXT NOT NULL, station TEXT NOT NULL,
    operational_unit TEXT NOT NULL, siren TEXT NOT NULL, entity TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, energy_kwh REAL NOT NULL,
    energy_ukwh INTEGER NOT NULL, max_power_kw REAL NOT NULL, month TEXT NOT NULL,
    flags INTEGER NOT NULL, accepted INTEGER NOT NULL, source_updated_ns INTEGER,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS session_ledger_id ON session_ledger (source, session_id);
CREATE INDEX IF NOT EXISTS session_ledger_pdc ON session_ledger (source, pdc, start_ns);
"""


def _old_sessions() -> list[ChargingSession]:
    updated = datetime(2026, 4, 2, 8, 30, tzinfo=UTC)
    return [
        session("a", updated_at=updated),
        session("b", "2026-03-31T22:30:00+00:00", energy_kwh=0.0000025),
        session("c", "2026-03-11T10:00:00+00:00", pdc="FRABCP002", station="FRABCS02"),
        session("d", "2026-03-12T10:00:00+00:00", energy_kwh=2000.0),
    ]


def _write_old(conn: sqlite3.Connection) -> None:
    """The previous version's ledger, written by its own code."""
    row_ledger.ensure_schema(conn)
    for source in ("qualicharge", "other"):
        rows = [
            (row_ledger.session_record(s), 2 if s.session_id == "d" else 0) for s in _old_sessions()
        ]
        tx(conn, lambda c, source=source, rows=rows: row_ledger.write_records(c, source, rows, []))


def test_migration_from_the_row_ledger(tmp_path: Path) -> None:
    """A state database of the previous version reads back entirely after migration, its
    totals untouched, and later corrections of migrated rows keep the totals exact."""
    path = tmp_path / "state.db"
    conn = connect(path)
    _write_old(conn)
    old_rows = view(conn)
    old_months = conn.execute("SELECT * FROM session_month ORDER BY 1, 2, 3, 4, 5").fetchall()
    conn.close()

    conn = connect(path)
    store.ensure_schema(conn)
    store.ensure_schema(conn)  # idempotent
    kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'session_ledger'").fetchone()
    assert kind == ("view",)
    assert view(conn) == old_rows
    assert conn.execute("SELECT * FROM session_month ORDER BY 1, 2, 3, 4, 5").fetchall() == (
        old_months
    )
    assert_totals_match_view(conn)
    assert store.locate(conn, "other", ["c"]) == {
        "c": ("FRABCP002", ns("2026-03-11T10:00:00+00:00"))
    }
    batch, flags = store.read_since(conn, "qualicharge", 0)
    assert sorted(zip(batch.session_id, flags.tolist(), strict=True)) == [
        ("a", 0),
        ("b", 0),
        ("c", 0),
        ("d", 2),
    ]
    assert batch.session(batch.session_id.index("a")).updated_at == datetime(
        2026, 4, 2, 8, 30, tzinfo=UTC
    )

    write(conn, [session("b", "2026-03-30T10:00:00+00:00"), session("e")], known=[True, False])
    write(conn, [session("a", energy_kwh=1.0)], flags=[64], known=[False])
    assert_totals_match_view(conn)
    assert len(view(conn, "qualicharge")) == 5
    conn.close()


def test_migration_of_a_frozen_old_table(tmp_path: Path) -> None:
    """The same, from a table written by SQL in the old format (the old code may be gone)."""
    conn = connect(tmp_path / "state.db")
    conn.executescript(OLD_SCHEMA)
    conn.execute(
        "INSERT INTO session_ledger VALUES ('qualicharge', 'a', 'P1', 'S1', 'FRABC', '123456789',"
        " 'E', ?, ?, 1.5, 1500000, 22.0, '2026-04', 0, 1, NULL, 1700000000.5)",
        (ns("2026-03-31T22:30:00+00:00"), ns("2026-03-31T23:30:00+00:00")),
    )
    conn.execute(
        "INSERT INTO session_ledger VALUES ('qualicharge', 'b', 'P1', 'S1', 'FRABC', '123456789',"
        " 'E', ?, ?, 2.0, 2000000, 22.0, '2026-03', 64, 0, 5, 1700000001.0)",
        (ns("2026-03-30T10:00:00+00:00"), ns("2026-03-30T11:00:00+00:00")),
    )
    old_rows = view(conn)
    store.ensure_schema(conn)
    assert view(conn) == old_rows
    assert store.latest_starts(conn) == {"qualicharge": ns("2026-03-31T22:30:00+00:00")}
    conn.close()
