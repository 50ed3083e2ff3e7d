"""The session ledger store: judged sessions in the state database, in columns, and monthly totals.

The exclusion engine keeps one ledger row per (source, session id) — the latest version of the
session and its verdict — written inside the outbox transaction that commits the session's
points, so ledger and points never disagree. It is also the engine's durable state: on start
it reads back the recent sessions of every source (`read_since`), and a late session older
than what memory holds reads its neighbours from here (`locate`, `last_start_before`,
`read_range`).

Storage is laid out for whole batches (tens of thousands of sessions per transaction):

- `ledger_pdc` numbers the charge points (source, pdc); `ledger_point` numbers the distinct
  charge point facts (station, operational unit, SIREN, entity, nominal power) of each. A
  session row refers to both by integer, so the text is stored once per charge point;
- `ledger_session` holds per session only integers, two reals and the session id: times in
  nanoseconds, the Europe/Paris month of the start as `YYYYMM`, the rule bits, and `key`, a
  64-bit hash of (source, session id), and a charge point's sessions are found through the
  integer index (pdc number, start);
- the session ids are found through `temp.ledger_key` (key, row number): a table of the
  connection's own, built from `ledger_session` when the schema is ensured and kept in step
  by every write (it rolls back with the transaction). Kept out of the file, the random
  inserts of a hash index cost no WAL pages and no fsync at every commit. The full id and
  source are compared on every match, so a hash collision is harmless;
- `session_ledger` is a view with the historical columns, for operators and tests.

`session_month` holds, per source, month, SIREN, operational unit and station, the energy and
count of accepted sessions and of excluded ones. `write_verdicts` moves it in the same
transaction by exactly the difference: a stored session's stored contribution (month, charge
point facts, accepted, energy in millionths of a kWh) is subtracted and the new one added, so
the table always equals the sum of the ledger, with no rounding residue. `changed_at` is the
last time a month's row changed: a month changed after it was submitted needs resubmitting.
"""

from __future__ import annotations

import json
import sqlite3
import time
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.checks import columns
from daemon.checks.places import by_code, factorize
from daemon.checks.store_reads import (
    MonthTotal,
    last_start_before,
    latest_starts,
    locate,
    month_totals,
    read_range,
    read_since,
    stored_batch,
)
from daemon.records import NO_TIME, SessionBatch

__all__ = [
    "MONTH_SCHEMA",
    "MonthTotal",
    "ensure_schema",
    "last_start_before",
    "latest_starts",
    "locate",
    "month_totals",
    "read_range",
    "read_since",
    "write_verdicts",
]

Ints = npt.NDArray[np.int64]

# Monthly totals (see the module docstring); the same table since the first ledger.
MONTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_month (
    source TEXT NOT NULL,
    month TEXT NOT NULL,
    siren TEXT NOT NULL,
    operational_unit TEXT NOT NULL,
    station TEXT NOT NULL,
    energy_ukwh INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    excluded INTEGER NOT NULL,
    excluded_ukwh INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (source, month, siren, operational_unit, station)
) WITHOUT ROWID;
"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS ledger_pdc (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    pdc TEXT NOT NULL,
    UNIQUE (source, pdc)
);
CREATE TABLE IF NOT EXISTS ledger_point (
    id INTEGER PRIMARY KEY,
    pdc_id INTEGER NOT NULL,
    station TEXT NOT NULL,
    operational_unit TEXT NOT NULL,
    siren TEXT NOT NULL,
    entity TEXT NOT NULL,
    max_power_kw REAL
);
CREATE INDEX IF NOT EXISTS ledger_point_pdc ON ledger_point (pdc_id);
CREATE TABLE IF NOT EXISTS ledger_session (
    key INTEGER NOT NULL,
    pdc_id INTEGER NOT NULL,
    point_id INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    energy_kwh REAL,
    energy_ukwh INTEGER NOT NULL,
    month INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    source_updated_ns INTEGER,
    updated_at REAL NOT NULL,
    session_id TEXT NOT NULL
);
DROP INDEX IF EXISTS ledger_session_key;
CREATE INDEX IF NOT EXISTS ledger_session_pdc ON ledger_session (pdc_id, start_ns);
"""
    + MONTH_SCHEMA
)

_KEYS = """
CREATE TEMP TABLE IF NOT EXISTS ledger_key (
    key INTEGER NOT NULL,
    row INTEGER NOT NULL,
    PRIMARY KEY (key, row)
) WITHOUT ROWID;
DELETE FROM temp.ledger_key;
INSERT INTO temp.ledger_key (key, row) SELECT key, rowid FROM ledger_session ORDER BY key, rowid;
"""

_VIEW = """
CREATE VIEW IF NOT EXISTS session_ledger AS
SELECT d.source AS source, s.session_id AS session_id, d.pdc AS pdc, p.station AS station,
       p.operational_unit AS operational_unit, p.siren AS siren, p.entity AS entity,
       s.start_ns AS start_ns, s.end_ns AS end_ns, s.energy_kwh AS energy_kwh,
       s.energy_ukwh AS energy_ukwh, p.max_power_kw AS max_power_kw,
       printf('%04d-%02d', s.month / 100, s.month % 100) AS month, s.flags AS flags,
       s.flags = 0 AS accepted, s.source_updated_ns AS source_updated_ns,
       s.updated_at AS updated_at
FROM ledger_session s
JOIN ledger_pdc d ON d.id = s.pdc_id
JOIN ledger_point p ON p.id = s.point_id
"""

# Row layout of `ledger_session` as written (tuples are built in this order).
_ROW = (
    "rowid, key, pdc_id, point_id, start_ns, end_ns, energy_kwh, energy_ukwh, month, flags, "
    "source_updated_ns, updated_at, session_id"
)
_INSERT = f"INSERT INTO ledger_session ({_ROW}) VALUES ({', '.join('?' * 13)})"  # noqa: S608
_UPDATE = (
    "UPDATE ledger_session SET "  # noqa: S608
    + ", ".join(f"{name.strip()} = ?" for name in _ROW.split(",")[1:])
    + " WHERE rowid = ?"
)

# Stored versions of sessions by key: what a new version replaces and the contribution it
# made to `session_month`. CROSS JOIN keeps the keys the outer loop (one index search each);
# left to itself the planner walks every session of the source instead.
_STORED = """
SELECT s.rowid, s.session_id, s.month, p.siren, p.operational_unit, p.station, s.flags,
       s.energy_ukwh
FROM json_each(?) j
CROSS JOIN temp.ledger_key k ON k.key = j.value
CROSS JOIN ledger_session s ON s.rowid = k.row
CROSS JOIN ledger_pdc d ON d.id = s.pdc_id AND d.source = ?
CROSS JOIN ledger_point p ON p.id = s.point_id
"""

_MONTH_ADD = """
INSERT INTO session_month (source, month, siren, operational_unit, station,
                           energy_ukwh, sessions, excluded, excluded_ukwh, changed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, month, siren, operational_unit, station) DO UPDATE SET
    energy_ukwh = energy_ukwh + excluded.energy_ukwh,
    sessions = sessions + excluded.sessions,
    excluded = session_month.excluded + excluded.excluded,
    excluded_ukwh = excluded_ukwh + excluded.excluded_ukwh,
    changed_at = excluded.changed_at
"""
_MONTH_EMPTY = """
DELETE FROM session_month WHERE source = ? AND month = ? AND siren = ?
    AND operational_unit = ? AND station = ? AND sessions = 0 AND excluded = 0
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the ledger tables and view if missing; migrate an old `session_ledger` table;
    build this connection's `temp.ledger_key`. Once per connection, before any other use."""
    conn.executescript(_SCHEMA)
    kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'session_ledger'").fetchone()
    if kind is not None and kind[0] == "table":
        _migrate(conn)
    conn.execute(_VIEW)
    conn.executescript(_KEYS)


def _migrate(conn: sqlite3.Connection) -> None:
    """Move the rows of the previous version's `session_ledger` table into the new storage
    and replace the table by the view, in one savepoint (so a crash leaves either format).
    `session_month` already equals the sum of the old rows and is left alone; each row keeps
    its stored month, energy in millionths and write time."""
    conn.execute("SAVEPOINT ledger_migration")
    try:
        cursor = conn.execute(
            # the `SessionBatch` columns (see `stored_batch`), then the rest
            "SELECT session_id, pdc, station, operational_unit, siren, entity, start_ns, "
            "end_ns, energy_kwh, max_power_kw, source_updated_ns, energy_ukwh, month, flags, "
            "updated_at, source FROM session_ledger ORDER BY source, rowid"
        )
        while rows := cursor.fetchmany(50_000):
            by_source: dict[str, list[Any]] = {}
            for row in rows:
                by_source.setdefault(row[-1], []).append(row)
            for source, part in by_source.items():
                _migrate_rows(conn, source, part)
        conn.execute("DROP TABLE session_ledger")
        conn.execute(_VIEW)
    except BaseException:
        conn.execute("ROLLBACK TO ledger_migration")
        conn.execute("RELEASE ledger_migration")
        raise
    conn.execute("RELEASE ledger_migration")


def _migrate_rows(conn: sqlite3.Connection, source: str, rows: list[Any]) -> None:
    stored = list(zip(*rows, strict=True))
    batch = stored_batch(source, *stored[:11])
    ukwh, months, flags, written = stored[11:15]
    ids = batch.session_id
    pdc_ids, point_ids, _ = _charge_points(conn, batch)
    conn.executemany(
        _INSERT,
        zip(
            [None] * len(ids),  # the next row number
            columns.session_keys(source, ids).tolist(),
            pdc_ids.tolist(),
            point_ids.tolist(),
            batch.start_ns.tolist(),
            batch.end_ns.tolist(),
            batch.energy_kwh.tolist(),
            ukwh,
            [int(label[:4]) * 100 + int(label[5:7]) for label in months],
            flags,
            stored[10],  # source_updated_ns, NULL kept
            written,
            ids,
            strict=True,
        ),
    )


def _optional(values: list[Any], missing: npt.NDArray[np.bool_]) -> list[Any]:
    """`values` with None where `missing` (NULL in SQLite)."""
    if missing.any():
        for index in np.flatnonzero(missing).tolist():
            values[index] = None
    return values


def _representatives(batch: SessionBatch) -> tuple[Ints, Ints]:
    """Rows standing for the others, and each row's index among them: rows with equal charge
    point facts (pdc, station, unit, SIREN, entity, nominal power) may share one. Usually
    every row of a charge point carries the same facts; then one row per place code (when the
    batch has them) or per charge point (checked column by column on factorised codes in
    numpy) stands for the rest; otherwise every row stands for itself."""
    codes = batch.place_codes
    firsts, slot = by_code(factorize(batch.pdc)[0] if codes is None else codes)
    representative = firsts[slot]
    power = batch.max_power_kw
    texts = (batch.station, batch.operational_unit, batch.siren, batch.entity)
    uniform = (
        codes is not None  # the same code: the same five strings
        or all(
            np.array_equal(column, column[representative])
            for column in (factorize(values)[0] for values in texts)
        )
    ) and np.array_equal(power, power[representative], equal_nan=True)
    if uniform:
        return firsts, slot
    everyone = np.arange(len(batch))
    return everyone, everyone


def _charge_points(
    conn: sqlite3.Connection, batch: SessionBatch
) -> tuple[Ints, Ints, dict[int, tuple[Any, ...]]]:
    """The `ledger_pdc` and `ledger_point` numbers of each row (created when new), and the
    facts (pdc number, station, unit, SIREN, entity, power) of each point number used; each
    resolved once per representative row (see `_representatives`)."""
    source = batch.source
    firsts, slot = _representatives(batch)
    few = batch.take(firsts)
    names = list(dict.fromkeys(few.pdc))
    pdc_of: dict[str, int] = dict(
        conn.execute(
            "SELECT pdc, id FROM ledger_pdc WHERE source = ? "
            "AND pdc IN (SELECT value FROM json_each(?))",
            (source, json.dumps(names)),
        ).fetchall()
    )
    for name in names:
        if name not in pdc_of:
            pdc_of[name] = conn.execute(
                "INSERT INTO ledger_pdc (source, pdc) VALUES (?, ?) RETURNING id", (source, name)
            ).fetchone()[0]
    pdc_ids = [pdc_of[name] for name in few.pdc]
    # NaN powers are stored as NULL; None keeps them equal to each other as dictionary keys.
    powers = _optional(few.max_power_kw.tolist(), np.isnan(few.max_power_kw))
    fields = (pdc_ids, few.station, few.operational_unit, few.siren, few.entity, powers)
    facts = list(zip(*fields, strict=True))
    point_of: dict[tuple[Any, ...], int] = {}
    wanted = set(facts)
    for number, *fact in conn.execute(
        "SELECT id, pdc_id, station, operational_unit, siren, entity, max_power_kw "
        "FROM ledger_point WHERE pdc_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(pdc_of.values())),),
    ):
        key = tuple(fact)
        if key in wanted:
            point_of[key] = number
    for fact in dict.fromkeys(facts):
        if fact not in point_of:
            point_of[fact] = conn.execute(
                "INSERT INTO ledger_point (pdc_id, station, operational_unit, siren, entity, "
                "max_power_kw) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                fact,
            ).fetchone()[0]
    point_ids = np.fromiter(map(point_of.__getitem__, facts), np.int64, len(facts))
    return (
        np.asarray(pdc_ids, np.int64)[slot],
        point_ids[slot],
        {number: fact for fact, number in point_of.items()},
    )


def write_verdicts(
    conn: sqlite3.Connection,
    batch: SessionBatch,
    flags: npt.NDArray[np.integer[Any]],
    known: npt.NDArray[np.bool_],
) -> None:
    """Store row i of `batch` (the latest version of that session) with rule bits `flags[i]`,
    and move `session_month` by exactly the difference. Inside the caller's transaction.

    `known` says which sessions the caller knows to be stored already. Every row is looked up
    regardless (the lookup costs what a uniqueness check would), so a row believed new that
    is stored already (a replay after a crash) replaces it like an update: never counted
    twice. If a session id occurs more than once in `batch`, its last row wins."""
    del known  # a hint only: see above
    count = len(batch)
    if not count:
        return
    source = batch.source
    ids = batch.session_id
    position = dict(zip(ids, range(count), strict=True))
    flags = np.asarray(flags, np.int64)
    if len(position) < count:  # repeated ids: keep each one's last row
        keep = np.fromiter(sorted(position.values()), np.intp, len(position))
        batch, flags = batch.take(keep), flags[keep]
        ids, count = batch.session_id, len(keep)
        position = dict(zip(ids, range(count), strict=True))
    now = time.time()
    keys = columns.session_keys(source, ids)
    months = columns.month_labels(batch.start_ns)
    ukwh = columns.energy_ukwh(batch.energy_kwh)
    pdc_ids, point_ids, facts = _charge_points(conn, batch)

    # Stored versions (keys sorted, so the index is walked in order).
    stored: dict[int, tuple[Any, ...]] = {}
    for row in conn.execute(
        _STORED, ("[" + ",".join(map(str, np.unique(keys).tolist())) + "]", source)
    ):
        index = position.get(row[1])
        if index is not None:  # not a different id that happens to share the key
            stored[index] = row

    if stored:
        again = list(stored)
        rows = _rows(batch, np.asarray(again), keys, pdc_ids, point_ids, ukwh, months, flags)
        conn.executemany(
            _UPDATE,
            [
                (*row, now, ids[i], stored[i][0])
                for row, i in zip(zip(*rows, strict=True), again, strict=True)
            ],
        )
        fresh = np.ones(count, bool)
        fresh[again] = False
        order = np.flatnonzero(fresh)
    else:
        order = np.arange(count)
    # New rows in (charge point, start) order: consecutive inserts land on the same pages of
    # the charge point index.
    order = order[np.lexsort((batch.start_ns[order], pdc_ids[order]))]
    rows = _rows(batch, order, keys, pdc_ids, point_ids, ukwh, months, flags)
    after = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM ledger_session").fetchone()[0]
    numbers = range(after + 1, after + 1 + len(order))
    conn.executemany(_INSERT, zip(numbers, *rows, repeat(now), [ids[i] for i in order.tolist()]))
    new_keys = keys[order]
    by_key = np.argsort(new_keys, kind="stable")
    conn.executemany(
        "INSERT INTO temp.ledger_key (key, row) VALUES (?, ?)",
        zip(new_keys[by_key].tolist(), (by_key + after + 1).tolist(), strict=True),
    )
    _move_months(conn, source, months, point_ids, ukwh, flags != 0, facts, stored, now)


def _rows(
    batch: SessionBatch, order: npt.NDArray[np.intp], *arrays: npt.NDArray[Any]
) -> list[list[Any]]:
    """The `ledger_session` columns from `key` to `source_updated_ns` of rows `order`, given
    `arrays` = key, pdc_id, point_id, energy_ukwh, month, flags: reordered in numpy before
    they become Python values."""
    updated = batch.updated_ns[order]
    return [
        *(column[order].tolist() for column in arrays[:3]),
        batch.start_ns[order].tolist(),
        batch.end_ns[order].tolist(),
        batch.energy_kwh[order].tolist(),
        *(column[order].tolist() for column in arrays[3:]),
        _optional(updated.tolist(), updated == NO_TIME),
    ]


def _month_text(month: int) -> str:
    """`YYYYMM` as `session_month` keys it: "YYYY-MM"."""
    return f"{month // 100:04d}-{month % 100:02d}"


def _move_months(
    conn: sqlite3.Connection,
    source: str,
    months: Ints,
    points: Ints,
    ukwh: Ints,
    excluded: npt.NDArray[np.bool_],
    facts: dict[int, tuple[Any, ...]],
    stored: dict[int, tuple[Any, ...]],
    now: float,
) -> None:
    """Add every row's contribution to `session_month` and subtract the stored ones."""
    # Sums per (month, point) in numpy, exact in int64; then per (month, SIREN, unit,
    # station) over the few groups.
    groups, inverse = np.unique(months * (1 << 32) + points, return_inverse=True)
    size = len(groups)
    accepted_ukwh = np.zeros(size, np.int64)
    excluded_ukwh = np.zeros(size, np.int64)
    np.add.at(accepted_ukwh, inverse, np.where(excluded, 0, ukwh))
    np.add.at(excluded_ukwh, inverse, np.where(excluded, ukwh, 0))
    excluded_count = np.bincount(inverse, weights=excluded, minlength=size).astype(np.int64)
    accepted_count = np.bincount(inverse, minlength=size) - excluded_count
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    for group, energy, count, dropped, dropped_ukwh in zip(
        groups.tolist(),
        accepted_ukwh.tolist(),
        accepted_count.tolist(),
        excluded_count.tolist(),
        excluded_ukwh.tolist(),
        strict=True,
    ):
        month = group >> 32
        _, station, unit, siren, _, _ = facts[group & 0xFFFFFFFF]
        key = (_month_text(month), siren, unit, station)
        total = deltas.get(key)
        if total is None:
            deltas[key] = [energy, count, dropped, dropped_ukwh]
        else:
            total[0] += energy
            total[1] += count
            total[2] += dropped
            total[3] += dropped_ukwh
    emptied = set()
    for _, _, month, siren, unit, station, old_flags, old_ukwh in stored.values():
        key = (_month_text(month), siren, unit, station)
        emptied.add(key)
        delta = deltas.setdefault(key, [0, 0, 0, 0])
        if old_flags:
            delta[2] -= 1
            delta[3] -= old_ukwh
        else:
            delta[0] -= old_ukwh
            delta[1] -= 1
    conn.executemany(
        _MONTH_ADD,
        [(source, *key, *delta, now) for key, delta in deltas.items() if any(delta)],
    )
    if emptied:
        conn.executemany(_MONTH_EMPTY, [(source, *key) for key in emptied])
