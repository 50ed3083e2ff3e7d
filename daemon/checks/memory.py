"""The exclusion engine's memory of one source: sessions in columns and their sorted order.

Rows are appended to growable numpy columns (start, end, energy, power, updated, rule bits,
charge point, place) and never move until `compact()`; a row replaced by a newer version or
forgotten is only marked dead. Session ids are found page by page through an `IdIndex`.

The seed's order — charge point, start, end, session id — is kept as the sorted array of
rows `order`, beside `coarse`: per position, the charge point number and the start in 2^30 ns
steps in one int64. A whole page is placed with one `searchsorted` on `coarse` and one merge;
only where a charge point has several sessions starting within the same ~1.07 s step are the
exact starts and ends compared (read from the columns through `order`).

Keys equal in all three parts are duplicates (DUPS). Their order among themselves only
decides which one is first (the smallest session id, which stays accepted); every other
member gets DUPS and, when it lasts, OVLP. So runs of equal keys are kept in any order and
judged apart (rare), everything else is judged against the key just before it, vectorised.

The invariant that makes neighbour rules exact: every ledger session of a charge point that
starts at or after the charge point's `lo` is in memory (and nothing before it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from daemon.checks.ids import IdIndex, hashes
from daemon.checks.places import Place, Places, pick
from daemon.checks.rules import DUPS, OVLP
from daemon.checks.sorted_arrays import SortedArrays, ranges
from daemon.records import NO_TIME, ChargingSession, SessionBatch, ns_to_dt

__all__ = ["MIN_NS", "Memory", "Place"]

MIN_NS = np.iinfo(np.int64).min

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def _unique(values: Ints) -> Ints:
    """Sorted distinct values (sorting beats hashing for these mostly sorted positions)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


class Memory:
    """Sessions of one source kept in memory, with the seed's sorted order."""

    _COLUMNS = (
        ("start", np.int64),
        ("end", np.int64),
        ("updated", np.int64),
        ("energy", np.float64),
        ("power", np.float64),
        ("flags", np.int64),
        ("pdc", np.int32),
        ("place", np.int32),
        ("alive", np.bool_),
        ("hash", np.int64),  # of the session id
    )

    def __init__(self, lo: int = MIN_NS) -> None:
        self.size = 0
        self.columns: dict[str, np.ndarray] = {
            name: np.zeros(1024, dtype) for name, dtype in self._COLUMNS
        }
        self.sid: list[str] = []
        self.ids = IdIndex()  # session id → its live row
        self.pdc_lo = np.zeros(0, np.int64)  # per charge point number: memory's lower bound
        self.place_list = Places()  # charge points and places, numbered
        self.pdcs = self.place_list.pdcs  # charge point → number
        self.lo = lo  # `lo` of a charge point not seen yet
        self._sorted = SortedArrays(2)  # order, coarse
        self.dead = 0

    @property
    def order(self) -> Ints:
        """The rows in the seed's order (a view, valid until the order changes)."""
        return self._sorted[0]

    @property
    def coarse(self) -> Ints:
        """Each position's charge point and start, coarsely (see `_coarse`)."""
        return self._sorted[1]

    # ----------------------------------------------------------------------------- columns

    def col(self, name: str) -> np.ndarray:
        """The filled part of column `name` (a view)."""
        return self.columns[name][: self.size]

    def live_rows(self) -> int:
        return self.size - self.dead

    def live_flags(self) -> dict[str, int]:
        """Rule bits of every session held, by session id."""
        rows = np.flatnonzero(self.col("alive")).tolist()
        sid = self.sid
        return dict(
            zip(map(sid.__getitem__, rows), self.columns["flags"][rows].tolist(), strict=True)
        )

    def known(self, ids: Sequence[str]) -> Bools:
        """Whether each of `ids` is held."""
        return self.ids.find(ids, hashes(ids), self.sid, self.col("hash"), self.col("alive")) >= 0

    def pdc_numbers(self, names: Sequence[str], codes: Ints | None = None) -> npt.NDArray[np.int32]:
        """Numbers of charge points (with their batch's place `codes`, if any), new ones
        registered with the source's `lo`."""
        numbers = self.place_list.pdc_numbers(names, codes)
        grow = len(self.pdcs) - len(self.pdc_lo)
        if grow > 0:
            self.pdc_lo = np.concatenate([self.pdc_lo, np.full(grow, self.lo, np.int64)])
        return numbers

    def append(
        self, batch: SessionBatch, flags: Ints, pdcs: npt.NDArray[np.int32]
    ) -> tuple[Ints, Ints]:
        """Add `batch` (distinct session ids) as new rows, not yet in the sorted order.
        Returns their row numbers and, per row, the live row of the same session held
        before (-1 for a new session), which `ids` finds until it is unplaced (dead)."""
        count = len(batch)
        first = self.size
        need = first + count
        if need > len(self.columns["start"]):
            # Growing fourfold: fewer generations to copy (each copy touches fresh pages,
            # and page faults are a large part of filling memory); pages never written
            # cost nothing.
            capacity = max(need, len(self.columns["start"]) * 4)
            for name, column in self.columns.items():
                grown = np.zeros(capacity, column.dtype)
                grown[:first] = column[:first]
                self.columns[name] = grown
        rows = slice(first, need)
        columns = self.columns
        columns["start"][rows] = batch.start_ns
        columns["end"][rows] = batch.end_ns
        columns["updated"][rows] = batch.updated_ns
        columns["energy"][rows] = batch.energy_kwh
        columns["power"][rows] = batch.max_power_kw
        columns["flags"][rows] = flags
        columns["pdc"][rows] = pdcs
        columns["place"][rows] = self.place_list.numbers(batch, pdcs)
        columns["alive"][rows] = True
        numbers = np.arange(first, need, dtype=np.int64)
        keys = hashes(batch.session_id)
        held = self.ids.claim(
            batch.session_id,
            keys,
            self.sid,
            columns["hash"][:first],
            columns["alive"][:first],
        )
        columns["hash"][rows] = keys
        self.sid.extend(batch.session_id)
        self.size = need
        return numbers, held

    def drop_new(self, rows: Ints) -> None:
        """Mark rows just appended (and never placed) dead."""
        self.columns["alive"][rows] = False
        self.dead += len(rows)

    def batch(self, source: str, rows: Sequence[int] | Ints) -> SessionBatch:
        """The sessions of `rows` as a batch."""
        picks = np.asarray(rows, np.int64)
        listed = picks.tolist()
        places = self.columns["place"][picks].astype(np.int64)
        pdc, station, unit, siren, entity = (
            pick(column, places.tolist()) for column in self.place_list.columns
        )
        return SessionBatch(
            source=source,
            session_id=pick(self.sid, listed),
            pdc=pdc,
            station=station,
            operational_unit=unit,
            siren=siren,
            entity=entity,
            start_ns=self.columns["start"][picks],
            end_ns=self.columns["end"][picks],
            energy_kwh=self.columns["energy"][picks],
            max_power_kw=self.columns["power"][picks],
            updated_ns=self.columns["updated"][picks],
            place_codes=places,
        )

    # ------------------------------------------------------------------------ sorted order

    def _coarse(self, rows: Ints) -> Ints:
        """Charge point and start (in 2^30 ns steps) in one int64: ordered as (charge point,
        start, end), ties aside; equal only on one charge point."""
        pdc = self.columns["pdc"][rows].astype(np.int64)
        return (pdc << 34) | ((self.columns["start"][rows] >> 30) + (1 << 33))

    def _same_key(self, first: Ints, second: Ints) -> Bools:
        """Whether the sessions at sorted positions `first` and `second` have equal keys."""
        same = self.coarse[first] == self.coarse[second]
        ties = np.flatnonzero(same)
        if len(ties):
            one, other = self.order[first[ties]], self.order[second[ties]]
            start, end = self.columns["start"], self.columns["end"]
            same[ties] = (start[one] == start[other]) & (end[one] == end[other])
        return same

    def _equal_next(self, positions: Ints) -> Bools:
        """Whether the key at each position equals the next one (a run goes on)."""
        inside = np.flatnonzero(positions + 1 < len(self.order))
        equal = np.zeros(len(positions), bool)
        if len(inside):
            at = positions[inside]
            equal[inside] = self._same_key(at, at + 1)
        return equal

    def _equal_previous(self, positions: Ints) -> Bools:
        """Whether the key at each position equals the one before."""
        inside = np.flatnonzero(positions > 0)
        equal = np.zeros(len(positions), bool)
        if len(inside):
            at = positions[inside]
            equal[inside] = self._same_key(at, at - 1)
        return equal

    def _runs(self, positions: Ints) -> tuple[Ints, Ints]:
        """First and past-last positions of the run of equal keys around each position."""
        low, high = positions.copy(), positions + 1
        going = np.arange(len(positions))
        while len(going):
            going = going[self._equal_previous(low[going])]
            low[going] -= 1
        going = np.arange(len(positions))
        while len(going):
            going = going[self._equal_next(high[going] - 1)]
            high[going] += 1
        return low, high

    def place(self, rows: Ints) -> Ints:
        """Put `rows` in the sorted order; returns their positions in it."""
        start, end = self.columns["start"], self.columns["end"]
        coarse = self._coarse(rows)
        by = np.argsort(coarse)  # ties (rare) are ordered exactly below
        coarse = coarse[by]
        ties = np.flatnonzero(coarse[1:] == coarse[:-1])
        if len(ties):  # same charge point, starts within a second: by exact start and end
            tied = _unique(np.concatenate([ties, ties + 1]))
            picked = rows[by[tied]]
            by[tied] = by[tied][np.lexsort((end[picked], start[picked], coarse[tied]))]
        rows = rows[by]
        where = np.searchsorted(self.coarse, coarse, side="left")
        held = len(self.coarse)
        if held:
            near = np.flatnonzero(self.coarse[np.minimum(where, held - 1)] == coarse)
            if len(near):  # after the sessions held with the same coarse key and no later key
                lengths = np.searchsorted(self.coarse, coarse[near], side="right") - where[near]
                owner = np.repeat(np.arange(len(near)), lengths)
                old = self.order[ranges(where[near], lengths)]
                new = rows[near][owner]
                before = (start[old] < start[new]) | (
                    (start[old] == start[new]) & (end[old] <= end[new])
                )
                where[near] += np.bincount(owner[before], minlength=len(near))
        return self._sorted.insert(where, (rows, coarse))

    def positions(self, rows: Ints) -> Ints:
        """Current positions of `rows` in the sorted order."""
        found = np.searchsorted(self.coarse, self._coarse(rows), side="left")
        order = self.order
        for index in np.flatnonzero(order[found] != rows).tolist():
            position, row = int(found[index]), int(rows[index])
            while order[position] != row:  # past other sessions of the same coarse key
                position += 1
            found[index] = position
        return found

    def unplace(self, rows: Ints) -> Ints:
        """Take `rows` out of the sorted order and mark them dead; returns the positions of
        the keys that followed them (where their neighbours are to be re-judged)."""
        if not len(rows):
            return np.empty(0, np.int64)
        where = np.sort(self.positions(rows))
        kept = np.ones(len(self.order), bool)
        kept[where] = False
        self._sorted.keep(kept)
        self.columns["alive"][rows] = False
        self.dead += len(rows)
        return where - np.arange(len(where))

    # ----------------------------------------------------------------------- neighbour bits

    def _leader(self, low: int, high: int) -> int:
        """The row with the smallest session id among sorted positions low..high."""
        return min(self.order[low:high].tolist(), key=self.sid.__getitem__)

    def _in_run(self, positions: Ints) -> Bools:
        """Whether the key at each position equals the one before or after it: one coarse
        comparison on each side, exact comparisons only where the coarse keys are equal."""
        coarse = self.coarse
        last = len(coarse) - 1
        here = coarse[positions]
        maybe = (here == coarse[np.maximum(positions - 1, 0)]) & (positions > 0)
        maybe |= (here == coarse[np.minimum(positions + 1, last)]) & (positions < last)
        candidates = np.flatnonzero(maybe)
        if len(candidates):
            at = positions[candidates]
            maybe[candidates] = self._equal_previous(at) | self._equal_next(at)
        return maybe

    def rejudge(self, changed: Ints, mask: int) -> tuple[Ints, Ints]:
        """(rows, DUPS/OVLP bits) of every session a change at sorted positions `changed`
        (unique) may re-judge, each against the session before it in the seed's order: the
        changed positions, the one after each, and every member of the runs of equal keys
        among these with the position after each such run (a run's first member by session
        id depends on what precedes it). Runs (duplicates) are rare: they are looked for with
        one comparison on each side of every position and followed only where they are."""
        count = len(self.order)
        valid = changed[(changed >= 0) & (changed < count)]
        after = valid + 1
        alone = after < count  # the position after, unless it changed itself
        alone[:-1] &= valid[1:] != after[:-1]
        parts = [valid, after[alone]]  # each sorted; together unique
        positions = np.concatenate(parts)
        runs = self._in_run(positions)
        if runs.any():
            extra = self._run_members(positions[runs])
            for part in parts:
                if len(part) and len(extra):
                    at = np.minimum(np.searchsorted(part, extra), len(part) - 1)
                    extra = extra[part[at] != extra]
            positions = np.concatenate([positions, extra])
            runs = np.concatenate([runs, self._in_run(extra)])
        return self._neighbour_bits(positions, runs, mask)

    def _run_members(self, positions: Ints) -> Ints:
        """Sorted unique: every member of the runs around `positions` (all in runs), the
        position after each run and, when that one starts a run, that run's members too."""
        count = len(self.order)
        lows, highs = self._runs(positions)
        ends = highs[highs < count]
        found = [ranges(lows, highs - lows), ends]
        ends = ends[self._equal_next(ends)]
        if len(ends):
            found.append(ranges(ends, self._runs(ends)[1] - ends))
        return _unique(np.concatenate(found))

    def _neighbour_bits(self, positions: Ints, runs: Bools, mask: int) -> tuple[Ints, Ints]:
        """(rows, DUPS/OVLP bits) at `positions` (unique, in range; `runs`: whether each is
        in a run of equal keys), judged against the session before each."""
        order, coarse = self.order, self.coarse
        rows = order[positions]
        before = np.maximum(positions - 1, 0)
        previous = order[before]
        pdc, end, start = self.columns["pdc"], self.columns["end"], self.columns["start"]
        same = (positions > 0) & ((coarse[before] >> 34) == (coarse[positions] >> 34))
        bits = np.where(same & (start[rows] < end[previous]), OVLP, 0).astype(np.int64)
        members = np.flatnonzero(runs)
        if len(members):
            # The first member of a run by session id is judged against what precedes the
            # run, every other one as its duplicate.
            lows, highs = self._runs(positions[members])
            firsts, index, inverse = np.unique(lows, return_index=True, return_inverse=True)
            leaders = np.fromiter(
                map(self._leader, firsts.tolist(), highs[index].tolist()), np.int64, len(firsts)
            )
            row = rows[members]
            head = order[np.maximum(lows - 1, 0)]
            lead = (lows > 0) & (pdc[head] == pdc[row]) & (start[row] < end[head])
            duplicate = DUPS | np.where(end[row] > start[row], OVLP, 0)
            bits[members] = np.where(row == leaders[inverse], np.where(lead, OVLP, 0), duplicate)
        return rows, bits & mask

    def previous_rows(self, rows: Ints) -> Ints:
        """The row of the session just before each of `rows` on its charge point in the seed's
        order (-1 where none): within a run of equal keys the member before it by session id,
        otherwise the key before its run (the last by session id when that key is a run)."""
        positions = self.positions(rows)
        lows, highs = self._runs(positions)
        order, pdc, sid = self.order, self.columns["pdc"], self.sid
        before = order[np.maximum(lows - 1, 0)]
        found = np.where((lows > 0) & (pdc[before] == pdc[rows]), before, -1)
        heads = np.flatnonzero(found >= 0)
        ran = heads[self._equal_previous(lows[heads] - 1)]
        if len(ran):
            first, _ = self._runs(lows[ran] - 1)
            for index, low, high in zip(
                ran.tolist(), first.tolist(), lows[ran].tolist(), strict=True
            ):
                found[index] = max(order[low:high].tolist(), key=sid.__getitem__)
        for index in np.flatnonzero(highs - lows > 1).tolist():
            members = sorted(order[lows[index] : highs[index]].tolist(), key=sid.__getitem__)
            rank = members.index(int(rows[index]))
            if rank:
                found[index] = members[rank - 1]
        return found

    def session(self, source: str, row: int) -> ChargingSession:
        """Row `row` as a `ChargingSession`."""
        columns = self.columns
        pdc, station, unit, siren, entity = self.place_list[int(columns["place"][row])]
        updated = int(columns["updated"][row])
        return ChargingSession(
            source=source,
            session_id=self.sid[row],
            pdc=pdc,
            station=station,
            operational_unit=unit,
            siren=siren,
            start=ns_to_dt(columns["start"][row]),
            end=ns_to_dt(columns["end"][row]),
            energy_kwh=float(columns["energy"][row]),
            max_power_kw=float(columns["power"][row]),
            updated_at=None if updated == NO_TIME else ns_to_dt(updated),
            entity=entity,
        )

    # ------------------------------------------------------------------------- forgetting

    def trim(self, horizon_ns: int) -> int:
        """Forget sessions that started more than `horizon_ns` before the latest one of their
        charge point (raising its `lo`); returns how many rows were forgotten."""
        if not len(self.order):
            return 0
        rows = self.order
        pdc = self.columns["pdc"][rows]
        start = self.columns["start"][rows]
        latest = np.full(len(self.pdc_lo), MIN_NS, np.int64)
        np.maximum.at(latest, pdc, start)
        seen = latest > MIN_NS
        cutoff = np.where(seen, latest - horizon_ns, MIN_NS)
        np.maximum(self.pdc_lo, cutoff, out=self.pdc_lo, where=seen)
        drop = start < cutoff[pdc]
        forgotten = int(drop.sum())
        if forgotten:
            gone = rows[drop]
            self.columns["alive"][gone] = False
            self.ids.rebuild(self.col("hash")[self.col("alive")])
            self.dead += forgotten
            keep = ~drop
            self._sorted.keep(keep)
        return forgotten

    def compact(self) -> None:
        """Drop dead rows from the columns (renumbering the live ones)."""
        alive = self.col("alive")
        live = np.flatnonzero(alive)
        renumber = np.full(self.size, -1, np.int64)
        renumber[live] = np.arange(len(live))
        for name, column in self.columns.items():
            kept = column[live]
            grown = np.zeros(max(1024, len(kept) * 2), column.dtype)
            grown[: len(kept)] = kept
            self.columns[name] = grown
        self.sid = [self.sid[row] for row in live.tolist()]
        self.size = len(live)
        self.dead = 0
        order = self.order
        order[:] = renumber[order]
