"""The streaming session exclusion engine (a `daemon.sessions.SessionJudge`).

`judge(source, sessions)` judges each session once, in O(1) for a session arriving in order:
its own rules (NEGS, ENEU, ENEA, ODUS, ENEX) from its own fields, the neighbour rules (DUPS,
OVLP) against the previous session of its charge point kept in memory. A late session is put
between its true neighbours and the one after it is re-judged; a session seen before (a
correction upstream, or a replay) replaces its old version — the neighbour after the old
place and the one after the new place are re-judged — and the points written for the old
version are corrected (see `verdicts`). A version older than the one already judged (by
`updated_at`, when the source gives it) is ignored. Only verdicts that changed produce points.

The returned `on_commit` writes the ledger rows of every changed verdict inside the outbox
transaction, so points, ledger, monthly totals and (through the emitter) the collector's
checkpoint commit together. Memory is the per-charge-point sessions of the last
`horizon_days`; the ledger holds everything, and a session older than what memory holds
reads its neighbours back from it (one query per charge point and batch, not per session).

Judging is deterministic and independent of arrival order: after any sequence of batches,
each session's flags equal those of the seed notebook's pipeline run on the latest version
of every session, sorted by charge point, start, end and session id.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

import structlog

from daemon.checks import neighbours as nb
from daemon.checks.ledger import (
    SELECT_COLUMNS,
    Record,
    dt_to_ns,
    ensure_schema,
    ns_to_dt,
    record_session,
    row_record,
    session_record,
    write_verdicts,
)
from daemon.checks.rules import DUPS, ENEA, ENEU, ENEX, NEGS, ODUS, OVLP, SessionRulesConfig
from daemon.checks.verdicts import retraction_points, session_points
from daemon.outbox import OnCommit
from daemon.points import Point
from daemon.records import ChargingSession, SessionBatch, Sessions
from daemon.sessions import session_point
from daemon.state import StateDB

__all__ = ["SessionEngine", "build_session_judge"]

_START = attrgetter("start")
Rows = list[tuple[Record, int]]


class SessionEngine:
    """Judges charging sessions against the exclusion rules and keeps the session ledger."""

    def __init__(self, config: SessionRulesConfig, db: StateDB) -> None:
        self.config = config
        self._db = db
        self._mask = config.mask
        self._horizon = timedelta(days=config.horizon_days)
        self._span = self._horizon * 1.5
        self._sources: dict[str, nb.SourceState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loaded = False
        self._log = structlog.get_logger("chargeflux.checks.sessions")

    async def load(self) -> None:
        """Create the ledger if needed and read back the recent sessions of every source."""
        horizon_ns = int(self._horizon.total_seconds()) * 1_000_000_000

        def read(conn: sqlite3.Connection) -> dict[str, tuple[int, list[tuple[Any, ...]]]]:
            ensure_schema(conn)
            # The ledger's indexes take random inserts (session ids, charge points): SQLite's
            # default 2 MB page cache makes each one a read from the OS; 64 MB keeps them hot.
            if conn.execute("PRAGMA cache_size").fetchone()[0] > -65536:
                conn.execute("PRAGMA cache_size = -65536")
            found = {}
            maxima = conn.execute(
                "SELECT source, MAX(start_ns) FROM session_ledger GROUP BY source"
            ).fetchall()
            for source, latest in maxima:
                cutoff = latest - horizon_ns
                rows = conn.execute(
                    f"SELECT {SELECT_COLUMNS} FROM session_ledger "  # noqa: S608
                    "WHERE source = ? AND start_ns >= ?",
                    (source, cutoff),
                ).fetchall()
                found[source] = (cutoff, rows)
            return found

        found = await self._db.run(read)
        self._sources.clear()
        for source, (cutoff, rows) in found.items():
            state = nb.SourceState(ns_to_dt(cutoff))
            by_pdc: dict[str, list[Record]] = {}
            for row in rows:
                record = row_record(row)
                by_pdc.setdefault(record[7], []).append(record)
            for name, pdc_rows in by_pdc.items():
                pdc = state.pdcs[name] = nb.PdcState(state.lo)
                nb.prepend(state, pdc, pdc_rows, state.lo)
                pdc.trim_at = pdc.items[0][0] + self._span
            self._sources[source] = state
            self._log.info(
                "session_engine_loaded", source=source, sessions=len(rows), pdcs=len(by_pdc)
            )
        self._loaded = True

    async def judge(self, source: str, sessions: Sessions) -> tuple[list[Point], OnCommit | None]:
        """Points for the sessions (and for re-judged neighbours), and the ledger writes."""
        if isinstance(sessions, SessionBatch):
            sessions = sessions.sessions()
        if not self._loaded:
            await self.load()
        if not sessions:
            return [], None
        lock = self._locks.setdefault(source, asyncio.Lock())
        async with lock:
            state = self._sources.get(source)
            if state is None:
                state = self._sources[source] = nb.SourceState()
            if state.trims and state.committed == state.seq:
                self._trim(state)
            await self._recall(source, state, sessions)
            state.seq += 1
            batch = nb.Batch(state.seq, self._mask)
            fresh = self._run(state, sessions, batch)
            points, rows = self._verdicts(source, state, fresh, batch)
        return points, self._writer(source, state, batch.seq, rows)

    def _run(
        self, state: nb.SourceState, sessions: Sequence[ChargingSession], batch: nb.Batch
    ) -> list[ChargingSession | None]:
        """The hot loop: judge every session; returns the sessions first seen in this batch
        (None where a later session of the same batch superseded one)."""
        config = self.config
        negs_below, odus_min = config.negs_below_s, config.odus_min_kwh
        eneu_max, enea_factor = config.eneu_max_kwh, config.enea_factor
        enex_min, enex_factor = config.enex_min_kwh, config.enex_factor
        mask, span = batch.mask, self._span
        stamp = batch.seq << nb.SHIFT
        pdcs, records, lo, trims = state.pdcs, state.records, state.lo, state.trims
        fresh: list[ChargingSession | None] = []
        keep = fresh.append
        for session in sessions:
            sid = session.session_id
            start = session.start
            end = session.end
            energy = session.energy_kwh
            power = session.max_power_kw
            # Same arithmetic as rules.own_flags (inlined: this loop is the hot path).
            duration = (end - start).total_seconds()
            flags = (NEGS | ODUS if energy > odus_min else NEGS) if duration < negs_below else 0
            if energy > eneu_max:
                flags |= ENEU
            enea_max = duration / 3600 * power
            if energy > enea_max * enea_factor:
                flags |= ENEA
            if energy > enex_min and energy > enea_max * enex_factor:
                flags |= ENEX
            name = session.pdc
            if sid in records:
                self._correct(state, session, (flags & mask) | stamp, batch, fresh)
                continue
            pdc = pdcs.get(name)
            if pdc is None:
                pdc = pdcs[name] = nb.PdcState(lo, start + span)
            items = pdc.items
            if items:
                last = items[-1]
                before = last[0]
                if before < start or (before == start and (last[1], last[2]) < (end, sid)):
                    if start < last[1]:
                        flags |= OVLP
                    if start == before and end == last[1]:
                        flags |= DUPS
                    record = (
                        start,
                        end,
                        sid,
                        (flags & mask) | stamp,
                        energy,
                        power,
                        session.updated_at,
                        name,
                        session.station,
                        session.operational_unit,
                        session.siren,
                        session.entity,
                    )
                    items.append(record)
                    records[sid] = record
                    keep(session)
                    if start > pdc.trim_at:
                        trims.add(name)
                    continue
                nb.insert(state, pdc, session_record(session, (flags & mask) | stamp), batch)
            else:
                record = session_record(session, (flags & mask) | stamp)
                items.append(record)
                records[sid] = record
                pdc.trim_at = start + span
            keep(session)
        return fresh

    def _correct(
        self,
        state: nb.SourceState,
        session: ChargingSession,
        value: int,
        batch: nb.Batch,
        fresh: list[ChargingSession | None],
    ) -> None:
        """A session seen before: take its old version out, put the new one in."""
        sid = session.session_id
        old = state.records[sid]
        updated = session.updated_at
        if old[6] is not None and updated is not None and updated < old[6]:
            return  # an older version than the one judged (a replayed page): ignored
        if old[3] >> nb.SHIFT == batch.seq and sid not in batch.touched:
            # First seen in this batch: its earlier version is listed in `fresh`.
            for index in range(len(fresh) - 1, -1, -1):
                earlier = fresh[index]
                if earlier is not None and earlier.session_id == sid:
                    fresh[index] = None
                    break
            fresh.append(session)
        else:
            batch.before(old, corrected=True)
        nb.remove(state, state.pdcs[old[7]], old, batch)
        pdc = state.pdcs.get(session.pdc)
        if pdc is None:
            pdc = state.pdcs[session.pdc] = nb.PdcState(state.lo, session.start + self._span)
        nb.insert(state, pdc, session_record(session, value), batch)

    def _verdicts(
        self,
        source: str,
        state: nb.SourceState,
        fresh: list[ChargingSession | None],
        batch: nb.Batch,
    ) -> tuple[list[Point], tuple[Rows, Rows]]:
        """Points and ledger rows (new sessions, changed ones) of every verdict this batch
        created or changed."""
        config = self.config
        records = state.records
        points: list[Point] = []
        rows: Rows = []
        changed: Rows = []
        add = points.append
        row = rows.append
        for session in fresh:
            if session is None:
                continue
            record = records[session.session_id]
            flags = record[3] & nb.BITS
            if flags:
                previous = self._previous(source, state, record, flags)
                points.extend(session_points(session, flags, previous, config))
            else:
                add(session_point(session, True))
            row((record, flags))
        for sid, (old, corrected) in batch.touched.items():
            record = records[sid]
            flags = record[3] & nb.BITS
            old_flags = old[3] & nb.BITS
            if not corrected and old_flags == flags:
                continue  # re-judged back to the verdict already stored
            session = record_session(source, record)
            if corrected or old_flags & ~flags:
                points.extend(
                    retraction_points(
                        record_session(source, old),
                        old_flags,
                        session,
                        flags,
                        corrected=corrected,
                    )
                )
            previous = self._previous(source, state, record, flags)
            points.extend(session_points(session, flags, previous, config))
            changed.append((record, flags))
        return points, (rows, changed)

    @staticmethod
    def _previous(
        source: str, state: nb.SourceState, record: Record, flags: int
    ) -> ChargingSession | None:
        if not flags & (DUPS | OVLP):
            return None
        previous = nb.predecessor(state.pdcs[record[7]], record)
        return None if previous is None else record_session(source, previous)

    def _writer(
        self, source: str, state: nb.SourceState, seq: int, rows: tuple[Rows, Rows]
    ) -> OnCommit:
        def write(conn: sqlite3.Connection) -> None:
            write_verdicts(conn, source, *rows)
            if seq > state.committed:
                state.committed = seq

        return write

    def _trim(self, state: nb.SourceState) -> None:
        for name in state.trims:
            pdc = state.pdcs.get(name)
            if pdc is not None:
                nb.trim(state, pdc, self._horizon, self._span)
        state.trims.clear()

    async def _recall(
        self, source: str, state: nb.SourceState, sessions: Sequence[ChargingSession]
    ) -> None:
        """Read back from the ledger the neighbours of sessions older than memory holds."""
        if min(map(_START, sessions)) >= state.max_lo:
            return
        need: dict[str, datetime] = {}
        unknown: list[str] = []
        for session in sessions:
            pdc = state.pdcs.get(session.pdc)
            if session.start < (state.lo if pdc is None else pdc.lo):
                if session.start < need.get(session.pdc, nb.MAX_TIME):
                    need[session.pdc] = session.start
                if session.session_id not in state.records:
                    unknown.append(session.session_id)
        if not need:
            return
        lows = {name: (state.pdcs[name].lo if name in state.pdcs else state.lo) for name in need}

        def read(conn: sqlite3.Connection) -> dict[str, tuple[int | None, list[Any]]]:
            wanted = {name: dt_to_ns(moment) for name, moment in need.items()}
            for first in range(0, len(unknown), 500):
                chunk = unknown[first : first + 500]
                marks = ",".join("?" * len(chunk))
                for name, start_ns in conn.execute(
                    "SELECT pdc, start_ns FROM session_ledger "  # noqa: S608
                    f"WHERE source = ? AND session_id IN ({marks})",
                    (source, *chunk),
                ):
                    known = state.pdcs.get(name)
                    lo = known.lo if known is not None else state.lo
                    if start_ns < dt_to_ns(lo) and start_ns < wanted.get(name, start_ns + 1):
                        wanted[name] = start_ns
                        lows.setdefault(name, lo)
            return {
                name: _read_before(conn, source, name, start_ns, dt_to_ns(lows[name]))
                for name, start_ns in wanted.items()
            }

        found = await self._db.run(read)
        for name, (new_lo, rows) in found.items():
            pdc = state.pdcs.get(name)
            if pdc is None:
                pdc = state.pdcs[name] = nb.PdcState(state.lo)
            loaded = [row_record(row) for row in rows]
            nb.prepend(state, pdc, loaded, nb.MIN_TIME if new_lo is None else ns_to_dt(new_lo))
            if pdc.items:
                pdc.trim_at = pdc.items[0][0] + self._span
        self._log.debug("session_neighbours_recalled", source=source, pdcs=len(found))


def _read_before(
    conn: sqlite3.Connection, source: str, pdc: str, start_ns: int, lo_ns: int
) -> tuple[int | None, list[Any]]:
    """The ledger sessions of `pdc` from the last start before `start_ns` up to `lo_ns`
    (excluded): the new lower bound (None: the beginning) and the rows."""
    (before,) = conn.execute(
        "SELECT MAX(start_ns) FROM session_ledger WHERE source = ? AND pdc = ? AND start_ns < ?",
        (source, pdc, start_ns),
    ).fetchone()
    rows = conn.execute(
        f"SELECT {SELECT_COLUMNS} FROM session_ledger "  # noqa: S608
        "WHERE source = ? AND pdc = ? AND start_ns >= ? AND start_ns < ?",
        (source, pdc, start_ns if before is None else before, lo_ns),
    ).fetchall()
    return before, rows


def build_session_judge(config: SessionRulesConfig, db: StateDB) -> SessionEngine:
    """The exclusion engine for `checks.sessions`; call `await judge.load()` before use (the
    first `judge()` loads it otherwise)."""
    return SessionEngine(config, db)
