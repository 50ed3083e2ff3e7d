"""The exclusion engine's memory of one source: sessions in columns and their sorted order.

Rows are appended to growable numpy columns (start, end, energy, power, updated, rule bits,
charge point, place) and never move until `compact()`; a row replaced by a newer version or
forgotten is only marked dead. The seed's order — charge point, start, end, session id — is
kept as one sorted array of 20-byte keys (charge point number, start, end, big-endian, sign
bit flipped) beside the row number of each key: numpy sorts and searches such keys as byte
strings, so a whole batch is placed with one `searchsorted` and one `insert`.

Keys equal in all three parts are duplicates (DUPS). Their order among themselves only
decides which one is first (the smallest session id, which stays accepted); every other
member gets DUPS and, when it lasts, OVLP. So runs of equal keys are kept in any order and
judged apart (rare), everything else is judged against the key just before it, vectorised.

The invariant that makes neighbour rules exact: every ledger session of a charge point that
starts at or after the charge point's `lo` is in memory (and nothing before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from daemon.checks.rules import DUPS, OVLP
from daemon.records import NO_TIME, ChargingSession, SessionBatch, ns_to_dt

__all__ = ["KEY", "MIN_NS", "Memory", "Place"]

KEY = np.dtype([("pdc", ">u4"), ("start", ">u8"), ("end", ">u8")])
MIN_NS = np.iinfo(np.int64).min
_SIGN = np.uint64(1 << 63)

Ints = npt.NDArray[np.int64]
Place = tuple[str, str, str, str, str]  # pdc, station, operational unit, siren, entity


def _factorize(values: Sequence[object] | np.ndarray) -> tuple[Ints, Sequence[Any]]:
    """Codes (0.. in order of first appearance) and the distinct values."""
    codes, distinct = pd.factorize(
        np.asarray(values) if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    )
    return codes.astype(np.int64, copy=False), distinct


def _unique(values: Ints) -> Ints:
    """Sorted distinct values (sorting beats hashing for these mostly sorted positions)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def _flip(values: Ints) -> npt.NDArray[np.uint64]:
    """int64 → uint64 preserving order (the sign bit flipped)."""
    return values.view(np.uint64) ^ _SIGN


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
    )

    def __init__(self, lo: int = MIN_NS) -> None:
        self.size = 0
        self.columns: dict[str, np.ndarray] = {
            name: np.zeros(1024, dtype) for name, dtype in self._COLUMNS
        }
        self.sid: list[str] = []
        self.ids: dict[str, int] = {}  # session id → its live row
        self.pdcs: dict[str, int] = {}  # charge point → number
        self.pdc_lo = np.zeros(0, np.int64)  # per charge point number: memory's lower bound
        self.places: dict[Place, int] = {}
        self.place_list: list[Place] = []
        self.lo = lo  # `lo` of a charge point not seen yet
        self.keys = np.empty(0, "S20")
        self.order = np.empty(0, np.int64)  # row of each key
        self.coarse = np.empty(0, np.int64)  # each key's charge point and start, coarsely
        self.dead = 0

    # ----------------------------------------------------------------------------- columns

    def col(self, name: str) -> np.ndarray:
        """The filled part of column `name` (a view)."""
        return self.columns[name][: self.size]

    def live_rows(self) -> int:
        return self.size - self.dead

    def pdc_numbers(self, names: Sequence[str]) -> npt.NDArray[np.int32]:
        """Numbers of charge points, new ones registered with the source's `lo` (one lookup
        per distinct name)."""
        codes, distinct = _factorize(names)
        pdcs = self.pdcs
        numbers = [pdcs.get(name, -1) for name in distinct]
        if -1 in numbers:
            for index, name in enumerate(distinct):
                if numbers[index] == -1:
                    numbers[index] = pdcs[name] = len(pdcs)
            grow = len(pdcs) - len(self.pdc_lo)
            self.pdc_lo = np.concatenate([self.pdc_lo, np.full(grow, self.lo, np.int64)])
        return np.asarray(numbers, np.int32)[codes]

    def place_numbers(self, batch: SessionBatch) -> Ints:
        """Numbers of the rows' places (charge point with its station, unit, SIREN, entity),
        each distinct place looked up once. A charge point's other columns are normally
        the same on all its rows of a batch (one database join): checked column-wise
        against its first row, and factorised together only when they are not."""
        key, distinct = _factorize(batch.pdc)
        first = np.empty(len(distinct), np.int64)
        first[key[::-1]] = np.arange(len(key) - 1, -1, -1)
        others = (batch.station, batch.operational_unit, batch.siren, batch.entity)
        for column in others:
            values = np.asarray(column, dtype=object)
            if not (values == values[first][key]).all():
                for column in others:  # some charge point has rows of several places
                    codes, found = _factorize(column)
                    key, _ = _factorize(key * len(found) + codes)
                first = np.empty(int(key.max()) + 1, np.int64)
                first[key[::-1]] = np.arange(len(key) - 1, -1, -1)
                break
        places = self.places
        numbers = []
        for index in first.tolist():
            place = (
                batch.pdc[index],
                batch.station[index],
                batch.operational_unit[index],
                batch.siren[index],
                batch.entity[index],
            )
            number = places.get(place)
            if number is None:
                number = places[place] = len(self.place_list)
                self.place_list.append(place)
            numbers.append(number)
        return np.asarray(numbers, np.int64)[key]

    def append(
        self, batch: SessionBatch, flags: Ints, pdcs: npt.NDArray[np.int32]
    ) -> tuple[Ints, Ints]:
        """Add `batch` (distinct session ids) as new rows, not yet in the sorted order.
        Returns their row numbers and, per row, the live row of the same session held
        before (-1 for a new session); `ids` is left pointing at those earlier rows."""
        count = len(batch)
        first = self.size
        need = first + count
        if need > len(self.columns["start"]):
            capacity = max(need, len(self.columns["start"]) * 2)
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
        columns["place"][rows] = self.place_numbers(batch)
        columns["alive"][rows] = True
        self.sid.extend(batch.session_id)
        self.size = need
        numbers = np.arange(first, need, dtype=np.int64)
        # One dict operation per session: a new id takes its row, a known one keeps its
        # earlier row and says which it is.
        held = np.asarray(
            list(map(self.ids.setdefault, batch.session_id, numbers.tolist())), np.int64
        )
        held[held == numbers] = -1
        return numbers, held

    def drop_new(self, rows: Ints) -> None:
        """Mark rows just appended (and never placed) dead."""
        self.columns["alive"][rows] = False
        self.dead += len(rows)

    def batch(self, source: str, rows: Sequence[int] | Ints) -> SessionBatch:
        """The sessions of `rows` as a batch."""
        picks = np.asarray(rows, np.int64)
        listed = picks.tolist()
        places = [self.place_list[number] for number in self.columns["place"][picks].tolist()]
        return SessionBatch(
            source=source,
            session_id=[self.sid[row] for row in listed],
            pdc=[place[0] for place in places],
            station=[place[1] for place in places],
            operational_unit=[place[2] for place in places],
            siren=[place[3] for place in places],
            entity=[place[4] for place in places],
            start_ns=self.columns["start"][picks],
            end_ns=self.columns["end"][picks],
            energy_kwh=self.columns["energy"][picks],
            max_power_kw=self.columns["power"][picks],
            updated_ns=self.columns["updated"][picks],
        )

    # ------------------------------------------------------------------------ sorted order

    def _keys(self, rows: Ints) -> npt.NDArray[np.bytes_]:
        keys = np.empty(len(rows), KEY)
        keys["pdc"] = self.columns["pdc"][rows]
        keys["start"] = _flip(self.columns["start"][rows])
        keys["end"] = _flip(self.columns["end"][rows])
        return keys.view("S20")

    def _coarse(self, rows: Ints) -> Ints:
        """Charge point and start (in 2^30 ns steps) in one int64, ordered as the keys are
        (ties aside): searching it is several times cheaper than searching byte keys."""
        pdc = self.columns["pdc"][rows].astype(np.int64)
        return (pdc << 34) | ((self.columns["start"][rows] >> 30) + (1 << 33))

    def place(self, rows: Ints) -> Ints:
        """Put `rows` in the sorted order; returns their positions in it."""
        keys = self._keys(rows)
        by_key = np.argsort(keys)  # equal keys in any order: runs are judged by session id
        keys, rows = keys[by_key], rows[by_key]
        coarse = self._coarse(rows)
        where = np.searchsorted(self.coarse, coarse, side="left")
        ties = np.flatnonzero(np.searchsorted(self.coarse, coarse, side="right") > where)
        for index in ties.tolist():  # same charge point, starts within a second: exact keys
            low = int(where[index])
            high = int(np.searchsorted(self.coarse, coarse[index], side="right"))
            where[index] = low + int(np.searchsorted(self.keys[low:high], keys[index], "right"))
        self.keys = np.insert(self.keys, where, keys)
        self.order = np.insert(self.order, where, rows)
        self.coarse = np.insert(self.coarse, where, coarse)
        return where + np.arange(len(rows))

    def positions(self, rows: Ints) -> Ints:
        """Current positions of `rows` in the sorted order."""
        keys = self._keys(rows)
        where = np.searchsorted(self.keys, keys, side="left")
        found = np.empty(len(rows), np.int64)
        order = self.order
        for index, (start, row) in enumerate(zip(where.tolist(), rows.tolist(), strict=True)):
            position = start
            while order[position] != row:  # past other members of a run of equal keys
                position += 1
            found[index] = position
        return found

    def unplace(self, rows: Ints) -> Ints:
        """Take `rows` out of the sorted order and mark them dead; returns the positions of
        the keys that followed them (where their neighbours are to be re-judged)."""
        if not len(rows):
            return np.empty(0, np.int64)
        where = np.sort(self.positions(rows))
        self.keys = np.delete(self.keys, where)
        self.order = np.delete(self.order, where)
        self.coarse = np.delete(self.coarse, where)
        self.columns["alive"][rows] = False
        self.dead += len(rows)
        return where - np.arange(len(where))

    # ----------------------------------------------------------------------- neighbour bits

    def neighbour_bits(self, positions: Ints, mask: int) -> tuple[Ints, Ints]:
        """(rows, DUPS/OVLP bits) at sorted `positions` (unique, in range), judged against
        the session before each in the seed's order."""
        keys, order = self.keys, self.order
        rows = order[positions]
        before = positions - 1
        has_before = before >= 0
        previous = order[np.where(has_before, before, 0)]
        pdc, end, start = self.columns["pdc"], self.columns["end"], self.columns["start"]
        same = has_before & (pdc[previous] == pdc[rows])
        bits = np.where(same & (start[rows] < end[previous]), OVLP, 0).astype(np.int64)
        # Runs of equal keys (duplicates) are judged apart: the first by session id against
        # what precedes the run, every other one as its duplicate.
        count = len(keys)
        after = positions + 1
        in_run = (has_before & (keys[np.where(has_before, before, 0)] == keys[positions])) | (
            (after < count) & (keys[np.where(after < count, after, 0)] == keys[positions])
        )
        members = np.flatnonzero(in_run)
        if len(members):
            run_keys = keys[positions[members]]
            lows = np.searchsorted(keys, run_keys, side="left").tolist()
            highs = np.searchsorted(keys, run_keys, side="right").tolist()
            for index, low, high in zip(members.tolist(), lows, highs, strict=True):
                row = int(rows[index])
                leader = min(order[low:high].tolist(), key=self.sid.__getitem__)
                if row != leader:
                    bits[index] = DUPS | (OVLP if end[row] > start[row] else 0)
                elif low == 0 or pdc[order[low - 1]] != pdc[row]:
                    bits[index] = 0
                else:
                    bits[index] = OVLP if start[row] < end[order[low - 1]] else 0
        return rows, bits & mask

    def _equal_next(self, positions: Ints) -> npt.NDArray[np.bool_]:
        """Whether the key at each position equals the next one (a run goes on)."""
        keys = self.keys
        following = positions + 1
        inside = following < len(keys)
        return inside & (keys[np.where(inside, following, 0)] == keys[positions])

    def run_positions(self, positions: Ints) -> Ints:
        """What a change at `positions` may re-judge (unique, sorted): those positions, the
        position after the run of equal keys each belongs to, and every member of the runs
        of all of these (a run's first member by session id depends on what precedes it)."""
        keys = self.keys
        count = len(keys)
        valid = positions[(positions >= 0) & (positions < count)]
        if not len(valid):
            return valid
        after = valid + 1
        longer = self._equal_next(valid)
        if longer.any():
            after[longer] = np.searchsorted(keys, keys[valid[longer]], side="right")
        touched = _unique(np.concatenate([valid, after[after < count]]))
        in_run = self._equal_next(touched)
        earlier = touched - 1
        has_earlier = earlier >= 0
        in_run |= has_earlier & (keys[np.where(has_earlier, earlier, 0)] == keys[touched])
        if not in_run.any():
            return touched
        run_keys = keys[touched[in_run]]
        lows = np.searchsorted(keys, run_keys, side="left").tolist()
        highs = np.searchsorted(keys, run_keys, side="right").tolist()
        runs = [np.arange(low, high) for low, high in zip(lows, highs, strict=True)]
        return _unique(np.concatenate([touched, *runs]))

    def previous(self, row: int) -> int | None:
        """The row of the session just before `row`'s on its charge point, if any."""
        position = int(self.positions(np.asarray([row], np.int64))[0])
        keys, order = self.keys, self.order
        first = int(np.searchsorted(keys, keys[position], side="left"))
        last = int(np.searchsorted(keys, keys[position], side="right"))
        if last - first > 1:
            members = sorted(order[first:last].tolist(), key=self.sid.__getitem__)
            rank = members.index(row)
            if rank:
                return members[rank - 1]
        if first == 0:
            return None
        before = int(order[first - 1])
        return before if self.columns["pdc"][before] == self.columns["pdc"][row] else None

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
            for sid in (self.sid[row] for row in gone.tolist()):
                del self.ids[sid]
            self.columns["alive"][gone] = False
            self.dead += forgotten
            keep = ~drop
            self.keys, self.order = self.keys[keep], rows[keep]
            self.coarse = self.coarse[keep]
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
        self.order = renumber[self.order]
        self.ids = dict(zip(self.sid, range(self.size), strict=True))
