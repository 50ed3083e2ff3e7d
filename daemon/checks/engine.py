"""The streaming session exclusion engine (a `daemon.sessions.SessionJudge`).

`judge(source, sessions)` judges a batch of sessions in columns (`SessionBatch`): the own
rules (NEGS, ENEU, ENEA, ODUS, ENEX) element-wise over whole columns, the neighbour rules
(DUPS, OVLP) against the previous session of the same charge point in the seed's order
(charge point, start, end, session id), which `Memory` keeps sorted and places a whole
batch into at once. Each session costs O(1) numpy work plus a binary search; a late session
lands between its true neighbours and the one after it is re-judged; a session seen before
(a correction upstream, or a replay) replaces its old version — the neighbours of the old
place and of the new one are re-judged — and the points written for the old version are
corrected (see `verdicts`). A version older than the one already judged (by `updated_at`,
when the source gives it) is ignored. Only verdicts that changed produce points.

The returned `on_commit` writes the ledger rows of every changed verdict inside the outbox
transaction, so points, ledger, monthly totals and (through the emitter) the collector's
checkpoint commit together. Memory holds each charge point's sessions of the last
`horizon_days`; the ledger holds everything, and a session older than what memory holds
reads its neighbours back from it (one query per charge point and batch, not per session).

Judging is deterministic and independent of arrival order: after any sequence of batches,
each session's flags equal those of the seed notebook's pipeline run on the latest version
of every session, sorted by charge point, start, end and session id.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import structlog

from daemon.checks import store
from daemon.checks.memory import MIN_NS, Memory
from daemon.checks.rules import NEIGHBOUR_RULES, SessionRulesConfig, own_flags_array
from daemon.checks.verdicts import new_session_points, rejudged_points
from daemon.outbox import OnCommit
from daemon.points import Point
from daemon.records import NO_TIME, SessionBatch, Sessions, as_batch
from daemon.sessions import Judgement, SessionLines
from daemon.state import StateDB

__all__ = ["SessionEngine", "build_session_judge"]

Ints = npt.NDArray[np.int64]
T = TypeVar("T")


@dataclass
class SourceState:
    """The engine's memory of one source (sessions of two sources are never compared)."""

    memory: Memory
    seq: int = 0  # batches judged
    committed: int = 0  # last batch whose ledger rows were committed
    trimmed: int = 0  # live rows after the last trim
    heads: dict[int, str] = field(default_factory=dict)  # place → series key of its lines


@dataclass
class Verdicts:
    """What one batch changed: rows first judged, rows re-judged (row → flags before), and
    corrected sessions (new row → old row)."""

    fresh: list[int] = field(default_factory=list)
    before: dict[int, int] = field(default_factory=dict)
    corrected: dict[int, int] = field(default_factory=dict)


class SessionEngine:
    """Judges charging sessions against the exclusion rules and keeps the session ledger."""

    def __init__(self, config: SessionRulesConfig, db: StateDB) -> None:
        self.config = config
        self._db = db
        self._mask = config.mask
        self._horizon_ns = int(config.horizon_days * 86_400 * 1_000_000_000)
        self._sources: dict[str, SourceState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loaded = False
        self._lines = SessionLines()
        self._log = structlog.get_logger("chargeflux.checks.sessions")

    # -------------------------------------------------------------------- introspection

    def flags(self, source: str) -> dict[str, int]:
        """Current rule bits of every session of `source` held in memory."""
        state = self._sources.get(source)
        if state is None:
            return {}
        return state.memory.live_flags()

    def remembered(self, source: str) -> int:
        """How many sessions of `source` memory holds."""
        state = self._sources.get(source)
        return 0 if state is None else len(state.memory.ids)

    # -------------------------------------------------------------------------- loading

    async def load(self) -> None:
        """Create the ledger if needed and read back the recent sessions of every source."""
        horizon = self._horizon_ns

        def read(conn: sqlite3.Connection) -> dict[str, tuple[int, SessionBatch, Ints]]:
            store.ensure_schema(conn)
            found = {}
            for source, latest in store.latest_starts(conn).items():
                cutoff = latest - horizon
                found[source] = (cutoff, *store.read_since(conn, source, cutoff))
            return found

        found = await self._db.run(read)
        self._sources.clear()
        for source, (cutoff, batch, flags) in found.items():
            memory = Memory(cutoff)
            self._remember(memory, batch, flags)
            self._sources[source] = SourceState(memory, trimmed=memory.live_rows())
            self._log.info(
                "session_engine_loaded", source=source, sessions=len(batch), pdcs=len(memory.pdcs)
            )
        self._loaded = True

    @staticmethod
    def _remember(memory: Memory, batch: SessionBatch, flags: Ints) -> None:
        """Put sessions read back from the ledger in memory (skipping those already there)."""
        if not len(batch):
            return
        known = memory.known(batch.session_id)
        if known.any():
            keep = np.flatnonzero(~known).tolist()
            batch, flags = batch.take(keep), flags[keep]
        rows, _ = memory.append(batch, flags, memory.pdc_numbers(batch.pdc, batch.place_codes))
        memory.place(rows)

    # -------------------------------------------------------------------------- judging

    async def judge(self, source: str, sessions: Sessions) -> Judgement:
        """Points for the sessions (and for re-judged neighbours), and the ledger writes."""
        if not self._loaded:
            await self.load()
        batch = _latest_versions(as_batch(source, sessions))
        if not len(batch):
            return Judgement([], [], None)
        lock = self._locks.setdefault(source, asyncio.Lock())
        async with lock:
            state = self._sources.get(source)
            if state is None:
                state = self._sources[source] = SourceState(Memory())
            if state.committed == state.seq:
                self._forget(state)
            pdcs = state.memory.pdc_numbers(batch.pdc, batch.place_codes)
            await self._recall(source, state, batch, pdcs)
            state.seq += 1
            points, lines, rows = await _in_thread(self._judge_batch, source, state, batch, pdcs)
        return Judgement(points, lines, self._writer(state, state.seq, rows))

    def _judge_batch(
        self,
        source: str,
        state: SourceState,
        batch: SessionBatch,
        pdcs: npt.NDArray[np.int32],
    ) -> tuple[list[Point], list[str], tuple[SessionBatch, Ints, npt.NDArray[np.bool_]]]:
        """The CPU-bound part of `judge` (points and ledger rows of a page of tens of
        thousands of sessions take a good part of a second): run in a worker thread, so the
        event loop goes on serving sinks, websockets and timers meanwhile. Only `judge`
        touches a source's memory, under that source's lock."""
        verdicts = self._run(state, batch, pdcs)
        points, lines = self._points(source, state, verdicts)
        return points, lines, self._ledger_rows(source, state.memory, verdicts)

    def _run(
        self,
        state: SourceState,
        batch: SessionBatch,
        pdcs: npt.NDArray[np.int32] | None = None,
    ) -> Verdicts:
        """Judge `batch` (distinct session ids) into memory; returns what changed."""
        memory = state.memory
        mask = self._mask
        verdicts = Verdicts()
        if not len(batch):
            return verdicts
        duration = (batch.end_ns - batch.start_ns) / 1e9
        own = own_flags_array(self.config, duration, batch.energy_kwh, batch.max_power_kw) & mask
        if pdcs is None:
            pdcs = memory.pdc_numbers(batch.pdc, batch.place_codes)
        rows, held = memory.append(batch, own, pdcs)
        seen = held >= 0
        near = np.empty(0, np.int64)
        if seen.any():
            known_updated = memory.col("updated")[held[seen]]
            new_updated = batch.updated_ns[seen]
            stale = np.zeros(len(batch), bool)
            stale[seen] = (
                (known_updated != NO_TIME)
                & (new_updated != NO_TIME)
                & (new_updated < known_updated)
            )
            if stale.any():  # an older version than the one judged: ignored
                memory.drop_new(rows[stale])
                rows, held, seen = rows[~stale], held[~stale], seen[~stale]
            replaced = held[seen]
            verdicts.corrected = dict(zip(rows[seen].tolist(), replaced.tolist(), strict=True))
            if len(replaced):
                after = memory.unplace(replaced)
                around = np.concatenate([after - 1, after])
                around = around[(around >= 0) & (around < len(memory.order))]
                near = np.unique(memory.order[around])  # rows next to the old versions' place
            if not len(rows):
                return verdicts
        flags = memory.col("flags")
        placed = memory.place(rows)  # sorted
        if len(near):
            placed = np.unique(np.concatenate([placed, memory.positions(near)]))
        judged_rows, bits = memory.rejudge(placed, mask)
        current = flags[judged_rows]
        updated = (current & ~NEIGHBOUR_RULES) | bits
        is_new = judged_rows >= rows[0]  # rows appended in this batch come last
        changed = (updated != current) & ~is_new
        for row, value in zip(
            judged_rows[changed].tolist(), current[changed].tolist(), strict=True
        ):
            verdicts.before.setdefault(row, value)
        flags[judged_rows] = updated
        verdicts.fresh = rows.tolist()
        return verdicts

    def _points(
        self, source: str, state: SourceState, verdicts: Verdicts
    ) -> tuple[list[Point], list[str]]:
        memory, heads = state.memory, state.heads

        def head(place: int) -> str:
            found = heads.get(place)
            if found is None:
                pdc, station, unit, siren, _ = memory.place_list[place]
                found = heads[place] = self._lines.head((source, unit, station, pdc, siren))
            return found

        points, lines = new_session_points(
            source, memory, verdicts.fresh, verdicts.corrected, self.config, head
        )
        if verdicts.before:
            points.extend(rejudged_points(source, memory, verdicts.before, self.config))
        return points, lines

    @staticmethod
    def _ledger_rows(
        source: str, memory: Memory, verdicts: Verdicts
    ) -> tuple[SessionBatch, Ints, npt.NDArray[np.bool_]]:
        flags = memory.col("flags")
        changed = [row for row, value in verdicts.before.items() if flags[row] != value]
        rows = np.asarray(verdicts.fresh + changed, np.int64)
        known = np.zeros(len(rows), bool)
        known[len(verdicts.fresh) :] = True
        if verdicts.corrected:
            known[: len(verdicts.fresh)] = np.isin(
                rows[: len(verdicts.fresh)], np.fromiter(verdicts.corrected, np.int64)
            )
        return memory.batch(source, rows), flags[rows].copy(), known

    def _writer(
        self,
        state: SourceState,
        seq: int,
        rows: tuple[SessionBatch, Ints, npt.NDArray[np.bool_]],
    ) -> OnCommit:
        def write(conn: sqlite3.Connection) -> None:
            store.write_verdicts(conn, *rows)
            if seq > state.committed:
                state.committed = seq

        return write

    # ------------------------------------------------------------------ memory upkeep

    def _forget(self, state: SourceState) -> None:
        """Trim memory to the horizon once it grew by half since the last trim (only when
        every judged batch is in the ledger, where forgotten sessions are read back)."""
        memory = state.memory
        live = memory.live_rows()
        if live > state.trimmed * 3 // 2:
            memory.trim(self._horizon_ns)
            state.trimmed = memory.live_rows()
        if memory.dead > max(10_000, memory.size // 3):
            memory.compact()

    async def _recall(
        self,
        source: str,
        state: SourceState,
        batch: SessionBatch,
        pdcs: npt.NDArray[np.int32],
    ) -> None:
        """Read back from the ledger the neighbours of sessions older than memory holds."""
        memory = state.memory
        late = np.flatnonzero(batch.start_ns < memory.pdc_lo[pdcs])
        if not len(late):
            return
        need: dict[str, int] = {}
        starts = batch.start_ns
        for index in late.tolist():
            name = batch.pdc[index]
            start = int(starts[index])
            if start < need.get(name, start + 1):
                need[name] = start
        late_ids = [batch.session_id[index] for index in late.tolist()]
        unknown = [
            sid for sid, held in zip(late_ids, memory.known(late_ids), strict=True) if not held
        ]
        lows = {name: int(memory.pdc_lo[memory.pdcs[name]]) for name in need}
        default_lo = memory.lo

        def read(conn: sqlite3.Connection) -> dict[str, tuple[int, SessionBatch, Ints]]:
            wanted = dict(need)
            for name, start_ns in store.locate(conn, source, unknown).values():
                lo = lows.get(name, default_lo)
                if start_ns < lo and start_ns < wanted.get(name, start_ns + 1):
                    wanted[name] = start_ns
                    lows.setdefault(name, lo)
            found = {}
            for name, start_ns in wanted.items():
                before = store.last_start_before(conn, source, name, start_ns)
                low = start_ns if before is None else before
                found[name] = (
                    MIN_NS if before is None else before,
                    *store.read_range(conn, source, [name], low, lows[name]),
                )
            return found

        found = await self._db.run(read)
        for name, (new_lo, rows, flags) in found.items():
            self._remember(memory, rows, flags)
            memory.pdc_lo[memory.pdc_numbers([name])[0]] = new_lo
        self._log.debug("session_neighbours_recalled", source=source, pdcs=len(found))


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread. A caller cancelled meanwhile still waits for the thread
    to end before the cancellation goes on, so the caller's lock covers all the thread does."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: its caller is gone
        raise


def _latest_versions(batch: SessionBatch) -> SessionBatch:
    """`batch` with one row per session: of several versions, the latest (by `updated_ns`
    when both are known, otherwise the later row)."""
    if len(set(batch.session_id)) == len(batch):
        return batch
    updated = batch.updated_ns.tolist()
    keep: dict[str, int] = {}
    for index, sid in enumerate(batch.session_id):
        kept = keep.get(sid)
        if kept is not None:
            before, now = updated[kept], updated[index]
            if before != NO_TIME and now != NO_TIME and now < before:
                continue
            del keep[sid]  # re-inserted: the row keeps its place among the others
        keep[sid] = index
    return batch.take(sorted(keep.values()))


def build_session_judge(config: SessionRulesConfig, db: StateDB) -> SessionEngine:
    """The exclusion engine for `checks.sessions`; call `await judge.load()` before use (the
    first `judge()` loads it otherwise)."""
    return SessionEngine(config, db)
