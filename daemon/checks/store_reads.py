"""Reading the session ledger store: the engine's reloads and lookups, and monthly totals.

See `daemon.checks.store` for the layout. Every query walks an index: the charge point
index (pdc number, start) for time ranges, the connection's `temp.ledger_key` for session
ids, the primary key of `session_month` for totals.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.checks import columns
from daemon.records import NO_TIME, SessionBatch

__all__ = [
    "MonthTotal",
    "last_start_before",
    "latest_starts",
    "locate",
    "month_totals",
    "read_range",
    "read_since",
    "stored_batch",
]

Ints = npt.NDArray[np.int64]

# What the engine reads back: the columns of a `SessionBatch`, then the flags.
_READ = """
SELECT s.session_id, d.pdc, p.station, p.operational_unit, p.siren, p.entity, s.start_ns,
       s.end_ns, s.energy_kwh, p.max_power_kw, s.source_updated_ns, s.flags
FROM ledger_session s
JOIN ledger_pdc d ON d.id = s.pdc_id
JOIN ledger_point p ON p.id = s.point_id
"""


def stored_batch(source: str, *columns: Sequence[Any]) -> SessionBatch:
    """A batch from stored columns in `SessionBatch` order (session id, pdc, station, unit,
    SIREN, entity, start, end, energy, power, updated): NULL energies and powers become NaN,
    a NULL update time `NO_TIME`."""
    ids, pdcs, stations, units, sirens, entities, starts, ends, energies, powers, updated = columns
    return SessionBatch(
        source=source,
        session_id=list(ids),
        pdc=list(pdcs),
        station=list(stations),
        operational_unit=list(units),
        siren=list(sirens),
        entity=list(entities),
        start_ns=np.asarray(starts, np.int64),
        end_ns=np.asarray(ends, np.int64),
        energy_kwh=np.asarray(energies, np.float64),  # None → NaN
        max_power_kw=np.asarray(powers, np.float64),
        updated_ns=np.asarray([NO_TIME if u is None else u for u in updated], np.int64),
    )


def _batch(source: str, rows: list[Any]) -> tuple[SessionBatch, Ints]:
    """The batch and flags of rows selected with `_READ`."""
    if not rows:
        return SessionBatch.empty(source), np.empty(0, np.int64)
    *columns, flags = zip(*rows, strict=True)
    return stored_batch(source, *columns), np.asarray(flags, np.int64)


def latest_starts(conn: sqlite3.Connection) -> dict[str, int]:
    """The latest session start per source."""
    # One index lookup per charge point instead of a scan of every session.
    rows = conn.execute(
        "SELECT source, MAX(latest) FROM (SELECT d.source AS source, "
        "(SELECT MAX(start_ns) FROM ledger_session WHERE pdc_id = d.id) AS latest "
        "FROM ledger_pdc d) WHERE latest IS NOT NULL GROUP BY source"
    )
    return dict(rows.fetchall())


def read_since(conn: sqlite3.Connection, source: str, start_ns: int) -> tuple[SessionBatch, Ints]:
    """Every stored session of `source` starting at or after `start_ns`, and its flags."""
    rows = conn.execute(
        _READ + "WHERE s.pdc_id IN (SELECT id FROM ledger_pdc WHERE source = ?) "  # noqa: S608
        "AND s.start_ns >= ?",
        (source, start_ns),
    ).fetchall()
    return _batch(source, rows)


def read_range(
    conn: sqlite3.Connection, source: str, pdcs: Sequence[str], lo_ns: int, hi_ns: int
) -> tuple[SessionBatch, Ints]:
    """The stored sessions of charge points `pdcs` with `lo_ns <= start < hi_ns`, and flags."""
    rows = conn.execute(
        _READ + "WHERE s.pdc_id IN (SELECT id FROM ledger_pdc WHERE source = ? "  # noqa: S608
        "AND pdc IN (SELECT value FROM json_each(?))) AND s.start_ns >= ? AND s.start_ns < ?",
        (source, json.dumps(list(pdcs)), lo_ns, hi_ns),
    ).fetchall()
    return _batch(source, rows)


def last_start_before(conn: sqlite3.Connection, source: str, pdc: str, start_ns: int) -> int | None:
    """The latest stored start of charge point `pdc` before `start_ns` (None: there is none)."""
    row = conn.execute(
        "SELECT MAX(start_ns) FROM ledger_session WHERE pdc_id = "
        "(SELECT id FROM ledger_pdc WHERE source = ? AND pdc = ?) AND start_ns < ?",
        (source, pdc, start_ns),
    ).fetchone()
    return row[0]


def locate(
    conn: sqlite3.Connection, source: str, session_ids: Sequence[str]
) -> dict[str, tuple[str, int]]:
    """Session id → (pdc, start_ns) of those of `session_ids` that are stored."""
    if not session_ids:
        return {}
    wanted = set(session_ids)
    keys = np.unique(columns.session_keys(source, list(session_ids))).tolist()
    found: dict[str, tuple[str, int]] = {}
    for sid, pdc, start in conn.execute(
        "SELECT s.session_id, d.pdc, s.start_ns FROM json_each(?) j "
        "CROSS JOIN temp.ledger_key k ON k.key = j.value "
        "CROSS JOIN ledger_session s ON s.rowid = k.row "
        "CROSS JOIN ledger_pdc d ON d.id = s.pdc_id AND d.source = ?",
        ("[" + ",".join(map(str, keys)) + "]", source),
    ):
        if sid in wanted:
            found[sid] = (pdc, start)
    return found


@dataclass(frozen=True, slots=True)
class MonthTotal:
    """Accepted and excluded energy of one station in one month (what CARBURE receives)."""

    source: str
    month: str
    siren: str
    operational_unit: str
    station: str
    energy_kwh: float
    sessions: int
    excluded: int
    excluded_kwh: float
    changed_at: datetime


def month_totals(
    conn: sqlite3.Connection,
    month: str,
    *,
    sources: Iterable[str] | None = None,
    siren: str | None = None,
) -> list[MonthTotal]:
    """Totals of `month` ("YYYY-MM", Europe/Paris) per source/SIREN/unit/station, sorted."""
    query = (
        "SELECT source, month, siren, operational_unit, station, energy_ukwh, sessions, "
        "excluded, excluded_ukwh, changed_at FROM session_month WHERE month = ?"
    )
    params: list[object] = [month]
    if siren is not None:
        query += " AND siren = ?"
        params.append(siren)
    wanted = None if sources is None else set(sources)
    rows = conn.execute(query + " ORDER BY siren, operational_unit, station, source", params)
    return [
        MonthTotal(
            source=row[0],
            month=row[1],
            siren=row[2],
            operational_unit=row[3],
            station=row[4],
            energy_kwh=row[5] / 1_000_000,
            sessions=row[6],
            excluded=row[7],
            excluded_kwh=row[8] / 1_000_000,
            changed_at=datetime.fromtimestamp(row[9], UTC),
        )
        for row in rows
        if wanted is None or row[0] in wanted
    ]
