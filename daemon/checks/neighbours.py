"""Per-charge-point memory of the exclusion engine: session records sorted by (start, end, id).

A record is a plain tuple `(start, end, session_id, flags, energy, max_power, updated_at,
pdc, station, operational_unit, siren, entity)` (see `ledger.session_record`): tuples of
atoms are ignored by the garbage collector, which keeps a large memory cheap. Tuples compare
on (start, end, session_id) first, and session ids are unique, so a charge point's list of
records sorts by exactly the seed's order with deterministic ties. `flags` is the rule bits
plus `batch << SHIFT`, the batch that created the record; a re-judged record is replaced.

The invariant that makes neighbour rules exact: every ledger session of a charge point
starting at or after its `lo` is in its list (and nothing before `lo`).

A session arriving in order is appended by the engine's hot loop; the functions here handle
the rest: inserting a late session between its true neighbours, removing the old version of
a corrected session, re-judging the session after either, trimming what fell out of the
horizon. `Batch.touched` keeps, for sessions judged in earlier batches, the record last
stored, so the engine can correct or clear the points written then.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.checks.ledger import Record
from daemon.checks.rules import DUPS, NEIGHBOUR_RULES, OVLP

__all__ = [
    "BITS",
    "MAX_TIME",
    "MIN_TIME",
    "SHIFT",
    "Batch",
    "PdcState",
    "SourceState",
    "insert",
    "neighbour_bits",
    "predecessor",
    "prepend",
    "rejudge",
    "remove",
    "trim",
    "with_flags",
]

MIN_TIME = datetime.min.replace(tzinfo=UTC)
MAX_TIME = datetime.max.replace(tzinfo=UTC)
SHIFT = 7  # flags value = rule bits | batch << SHIFT
BITS = (1 << SHIFT) - 1


class PdcState:
    """One charge point: its records since `lo`, sorted; `trim_at` is when to trim them."""

    __slots__ = ("items", "lo", "trim_at")

    def __init__(self, lo: datetime, trim_at: datetime = MAX_TIME) -> None:
        self.items: list[Record] = []
        self.lo = lo
        self.trim_at = trim_at


class SourceState:
    """The engine's memory for one source (sessions of two sources are never compared)."""

    __slots__ = ("committed", "lo", "max_lo", "pdcs", "records", "seq", "trims")

    def __init__(self, lo: datetime = MIN_TIME) -> None:
        self.pdcs: dict[str, PdcState] = {}
        self.records: dict[str, Record] = {}
        self.lo = lo  # `lo` of a charge point not seen since start-up
        self.max_lo = lo  # the highest `lo` of any charge point (no late session: no load)
        self.trims: set[str] = set()
        self.seq = 0  # batches judged
        self.committed = 0  # last batch whose ledger rows were committed


@dataclass
class Batch:
    """Bookkeeping of one `judge()` call: for each session stored before this batch and
    changed by it, [record as stored, corrected (a new version arrived)]."""

    seq: int
    mask: int
    touched: dict[str, list[Any]] = field(default_factory=dict)

    def before(self, record: Record, corrected: bool = False) -> None:
        """Remember the stored `record` before this batch first changes it."""
        sid = record[2]
        seen = self.touched.get(sid)
        if seen is not None:
            seen[1] = seen[1] or corrected
        elif record[3] >> SHIFT != self.seq:
            self.touched[sid] = [record, corrected]


def with_flags(record: Record, value: int) -> Record:
    """`record` with another flags value."""
    return (*record[:3], value, *record[4:])


def neighbour_bits(previous: Record | None, record: Record) -> int:
    """DUPS/OVLP bits of `record` after `previous` on the same charge point."""
    if previous is None:
        return 0
    start = record[0]
    bits = OVLP if start < previous[1] else 0
    if start == previous[0] and record[1] == previous[1]:
        bits |= DUPS
    return bits


def rejudge(state: SourceState, items: list[Record], index: int, batch: Batch) -> None:
    """Recompute the neighbour bits of `items[index]` against the record before it."""
    record = items[index]
    value = record[3]
    bits = neighbour_bits(items[index - 1] if index else None, record) & batch.mask
    new = (value & ~NEIGHBOUR_RULES) | bits
    if new != value:
        batch.before(record)
        record = with_flags(record, new)
        items[index] = record
        state.records[record[2]] = record


def insert(state: SourceState, pdc: PdcState, record: Record, batch: Batch) -> None:
    """Insert a record created in this batch (its own rule bits in `flags`), judge it against
    its predecessor and re-judge its successor."""
    items = pdc.items
    index = bisect_left(items, record)
    previous = items[index - 1] if index else None
    value = record[3]
    new = (value & ~NEIGHBOUR_RULES) | (neighbour_bits(previous, record) & batch.mask)
    if new != value:
        record = with_flags(record, new)
    state.records[record[2]] = record
    items.insert(index, record)
    if index + 1 < len(items):
        rejudge(state, items, index + 1, batch)


def remove(state: SourceState, pdc: PdcState, record: Record, batch: Batch) -> None:
    """Take `record` out and re-judge the session that followed it."""
    items = pdc.items
    index = bisect_left(items, record)
    if index >= len(items) or items[index] is not record:
        raise LookupError(f"session {record[2]} is not where its start says")
    del items[index]
    if index < len(items):
        rejudge(state, items, index, batch)


def predecessor(pdc: PdcState, record: Record) -> Record | None:
    """The record just before `record` (None for the first one)."""
    index = bisect_left(pdc.items, record)
    return pdc.items[index - 1] if index else None


def prepend(state: SourceState, pdc: PdcState, rows: Iterable[Record], lo: datetime) -> None:
    """Put records read back from the ledger (all before `pdc.lo`) in front; `lo` is the new
    lower bound. Sessions already in memory (a correction moved them) are skipped."""
    records = state.records
    loaded: list[Record] = []
    for record in rows:
        sid = record[2]
        if sid in records:
            continue
        records[sid] = record
        loaded.append(record)
    loaded.sort()
    pdc.items[:0] = loaded
    pdc.lo = lo


def trim(state: SourceState, pdc: PdcState, horizon: timedelta, span: timedelta) -> None:
    """Forget the sessions that started more than `horizon` before the latest one."""
    items = pdc.items
    if not items:
        return
    cutoff = items[-1][0] - horizon
    index = bisect_left(items, (cutoff,))
    if index:
        records = state.records
        for record in items[:index]:
            del records[record[2]]
        del items[:index]
    if cutoff > pdc.lo:
        pdc.lo = cutoff
        if cutoff > state.max_lo:
            state.max_lo = cutoff
    pdc.trim_at = items[0][0] + span
