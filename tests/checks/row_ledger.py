"""The previous version's session ledger (one 17-column row per session), kept as test support.

The daemon stores sessions with `daemon.checks.store`, which migrates a state database of
this format on start. This module writes such databases for the migration test, and is the
baseline of `tests/benchmarks/bench_ledger.py`. Its original description follows.

The session ledger: every judged session in the state database, and monthly totals.

`session_ledger` holds one row per (source, session id) — the latest version of the session
and its verdict — written in the outbox transaction that commits the session's points, so
ledger and points never disagree. It is also the exclusion engine's durable state: on start
the engine reads back recent sessions per charge point, and a late session older than what
it keeps in memory reads its neighbours from here.

`session_month` holds, per source, Europe/Paris month of the session start, SIREN,
operational unit and station, the energy and count of accepted sessions and of excluded
ones. `write_verdicts` moves it in the same transaction as the ledger rows, by exactly the
difference: a changed session's stored row is read back and its old contribution
subtracted, so the table always equals the sum of the ledger. Energies are summed as
integers (millionths of a kWh), so corrections that subtract and add again leave no rounding
residue. `changed_at` is the last time a month's row changed: a month changed after it was
submitted needs resubmitting.

Times are stored as integer nanoseconds since the epoch (UTC); `month` is "YYYY-MM".
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.checks.store import _MONTH_ADD, _MONTH_EMPTY, MONTH_SCHEMA
from daemon.records import ChargingSession

__all__ = [
    "LEDGER_SCHEMA",
    "SELECT_COLUMNS",
    "UPSERT",
    "MonthLabeler",
    "Record",
    "dt_to_ns",
    "ensure_schema",
    "ledger_row",
    "ns_to_dt",
    "record_session",
    "row_record",
    "session_record",
    "write_records",
]

PARIS = ZoneInfo("Europe/Paris")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

LEDGER_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS session_ledger (
    source TEXT NOT NULL,
    session_id TEXT NOT NULL,
    pdc TEXT NOT NULL,
    station TEXT NOT NULL,
    operational_unit TEXT NOT NULL,
    siren TEXT NOT NULL,
    entity TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    energy_kwh REAL NOT NULL,
    energy_ukwh INTEGER NOT NULL,
    max_power_kw REAL NOT NULL,
    month TEXT NOT NULL,
    flags INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    source_updated_ns INTEGER,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS session_ledger_id ON session_ledger (source, session_id);
CREATE INDEX IF NOT EXISTS session_ledger_pdc ON session_ledger (source, pdc, start_ns);
"""
    + MONTH_SCHEMA
)

# `session_month` and the statements that move it are the daemon's, unchanged since.


_COLUMNS = (
    "source, session_id, pdc, station, operational_unit, siren, entity, start_ns, end_ns, "
    "energy_kwh, energy_ukwh, max_power_kw, month, flags, accepted, source_updated_ns, "
    "updated_at"
)
_UPDATED = ", ".join(
    f"{name} = excluded.{name}"
    for name in (part.strip() for part in _COLUMNS.split(","))
    if name not in ("source", "session_id")
)
INSERT = (
    f"INSERT INTO session_ledger ({_COLUMNS}) VALUES ({', '.join('?' * 17)}) "
    "ON CONFLICT (source, session_id) DO NOTHING"
)
UPSERT = (
    f"INSERT INTO session_ledger ({_COLUMNS}) VALUES ({', '.join('?' * 17)}) "
    f"ON CONFLICT (source, session_id) DO UPDATE SET {_UPDATED}"
)
SELECT_COLUMNS = (
    "session_id, pdc, station, operational_unit, siren, entity, start_ns, end_ns, "
    "energy_kwh, max_power_kw, source_updated_ns, flags"
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the ledger tables and indexes if missing."""
    conn.executescript(LEDGER_SCHEMA)


def dt_to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (microsecond precision)."""
    return ((moment - _EPOCH) // _US) * 1000


def ns_to_dt(ns: int) -> datetime:
    """The aware UTC datetime of `ns` (truncated to microseconds)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class MonthLabeler:
    """Europe/Paris month ("YYYY-MM") of aware datetimes, caching the last month's bounds."""

    def __init__(self) -> None:
        self._lo = self._hi = _EPOCH
        self._label = ""

    def __call__(self, moment: datetime) -> str:
        if self._lo <= moment < self._hi:
            return self._label
        local = moment.astimezone(PARIS)
        first = datetime(local.year, local.month, 1, tzinfo=PARIS)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        self._lo, self._hi = first, datetime(year, month, 1, tzinfo=PARIS)
        self._label = f"{local.year:04d}-{local.month:02d}"
        return self._label


Record = tuple  # (start, end, session_id, flags, energy, max_power, updated_at, pdc,
#                  station, operational_unit, siren, entity): what the engine keeps per session


def session_record(session: ChargingSession, flags: int = 0) -> Record:
    """The compact, garbage-collector-friendly form the engine keeps of a session."""
    return (
        session.start,
        session.end,
        session.session_id,
        flags,
        session.energy_kwh,
        session.max_power_kw,
        session.updated_at,
        session.pdc,
        session.station,
        session.operational_unit,
        session.siren,
        session.entity,
    )


def record_session(source: str, record: Record) -> ChargingSession:
    """The `ChargingSession` of a record."""
    start, end, sid, _, energy, power, updated, pdc, station, unit, siren, entity = record
    return ChargingSession(
        source=source,
        session_id=sid,
        pdc=pdc,
        station=station,
        operational_unit=unit,
        siren=siren,
        start=start,
        end=end,
        energy_kwh=energy,
        max_power_kw=power,
        updated_at=updated,
        entity=entity,
    )


def ledger_row(
    source: str, record: Record, flags: int, now: float, month: MonthLabeler
) -> tuple[object, ...]:
    """The `session_ledger` row (in `UPSERT` order) of a judged session (rule bits `flags`)."""
    start, end, sid, _, energy, power, updated, pdc, station, unit, siren, entity = record
    energy = float(energy)
    return (
        source,
        sid,
        pdc,
        station,
        unit,
        siren,
        entity,
        dt_to_ns(start),
        dt_to_ns(end),
        energy,
        round(energy * 1_000_000) if math.isfinite(energy) else 0,
        float(power),
        month(start),
        flags,
        0 if flags else 1,
        None if updated is None else dt_to_ns(updated),
        now,
    )


def row_record(row: Sequence[Any]) -> Record:
    """The record (flags as stored, batch 0) of a row selected with `SELECT_COLUMNS`."""
    sid, pdc, station, unit, siren, entity, start, end, energy, power, updated, flags = row
    return (
        ns_to_dt(start),
        ns_to_dt(end),
        sid,
        flags,
        energy,
        power,
        None if updated is None else ns_to_dt(updated),
        pdc,
        station,
        unit,
        siren,
        entity,
    )


def _stored(conn: sqlite3.Connection, source: str, ids: Sequence[str], *extra: Any) -> list[Any]:
    """(session_id, month, siren, unit, station, accepted, energy_ukwh) of stored `ids`."""
    found: list[Any] = []
    condition = " AND updated_at != ?" if extra else ""
    for first in range(0, len(ids), 500):
        chunk = ids[first : first + 500]
        found.extend(
            conn.execute(
                "SELECT session_id, month, siren, operational_unit, station, accepted, "
                "energy_ukwh FROM session_ledger "
                f"WHERE source = ? AND session_id IN ({','.join('?' * len(chunk))}){condition}",
                (source, *chunk, *extra),
            )
        )
    return found


def write_records(
    conn: sqlite3.Connection,
    source: str,
    fresh: Sequence[tuple[Record, int]],
    changed: Sequence[tuple[Record, int]],
) -> None:
    """Store verdicts in the ledger and move the monthly totals by exactly the difference.

    `fresh` are sessions the engine has not stored before (inserted; any that turn out to be
    stored already are handled like `changed`), `changed` new versions or new verdicts of
    stored ones (their old contribution is read back and subtracted). Inside the caller's
    transaction."""
    now = time.time()
    month = MonthLabeler()
    new_rows = [ledger_row(source, record, flags, now, month) for record, flags in fresh]
    changed_rows = [ledger_row(source, record, flags, now, month) for record, flags in changed]
    before = conn.total_changes
    conn.executemany(INSERT, new_rows)
    if conn.total_changes - before != len(new_rows):  # some were stored already
        known = {row[0] for row in _stored(conn, source, [row[1] for row in new_rows], now)}
        changed_rows += [row for row in new_rows if row[1] in known]
        new_rows = [row for row in new_rows if row[1] not in known]
    previous = _stored(conn, source, [row[1] for row in changed_rows]) if changed_rows else []
    conn.executemany(UPSERT, changed_rows)
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    for rows in (new_rows, changed_rows):
        for row in rows:
            key = (row[12], row[5], row[4], row[3])  # month, siren, unit, station
            delta = deltas.get(key)
            if delta is None:
                delta = deltas[key] = [0, 0, 0, 0]
            if row[14]:
                delta[0] += row[10]
                delta[1] += 1
            else:
                delta[2] += 1
                delta[3] += row[10]
    emptied = set()
    for _, unit_month, siren, unit, station, accepted, ukwh in previous:
        key = (unit_month, siren, unit, station)
        emptied.add(key)
        delta = deltas.setdefault(key, [0, 0, 0, 0])
        if accepted:
            delta[0] -= ukwh
            delta[1] -= 1
        else:
            delta[2] -= 1
            delta[3] -= ukwh
    conn.executemany(
        _MONTH_ADD,
        [(source, *key, *delta, now) for key, delta in deltas.items() if any(delta)],
    )
    if emptied:
        conn.executemany(_MONTH_EMPTY, [(source, *key) for key in emptied])
