"""Charge points and places of one source's sessions, numbered, for the engine's memory.

A place is a charge point with its station, operational unit, SIREN and entity, as a session
row carries them. The memory keeps a number per row instead of five strings; `Places` turns
a page's string columns into numbers and the numbers back into strings.

Places are kept as five lists of strings (one per field) and a dict from an encoding of the
five strings to the number, never as one tuple per place: tuples are objects the garbage
collector tracks, and creating thousands of them while judging a page would make the
collector walk every young list of the process (a page's own columns among them).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter, ne
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from daemon.records import SessionBatch

__all__ = ["Place", "Places", "by_code", "factorize", "pick"]

Ints = npt.NDArray[np.int64]
Place = tuple[str, str, str, str, str]  # pdc, station, operational unit, siren, entity


def factorize(values: Sequence[object] | np.ndarray) -> tuple[Ints, Sequence[Any]]:
    """Codes (0.. in order of first appearance) and the distinct values."""
    codes, distinct = pd.factorize(
        np.asarray(values) if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    )
    return codes.astype(np.int64, copy=False), distinct


def pick(values: Sequence[str], rows: list[int]) -> list[str]:
    """`values` at `rows`, as a list."""
    if len(rows) > 1:
        return list(itemgetter(*rows)(values))
    return [values[row] for row in rows]


def _first_rows(codes: Ints, count: int) -> Ints:
    """Per code 0..count-1, the first row holding it (-1 for none)."""
    first = np.full(count, -1, np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first


def by_code(codes: Ints) -> tuple[Ints, Ints]:
    """The first row of each distinct code (small non-negative integers), and each row's
    index among those."""
    first = _first_rows(codes, int(codes.max()) + 1)
    present = np.flatnonzero(first >= 0)
    slot = np.zeros(len(first), np.int64)
    slot[present] = np.arange(len(present))
    return first[present], slot[codes]


def _key(fields: Sequence[str]) -> str:
    """One string per place, distinct for distinct places (each field length-prefixed)."""
    return "".join(f"{len(field)}:{field}" for field in fields)


class Places:
    """The charge points and places of one source, numbered in order of appearance."""

    def __init__(self) -> None:
        self.pdcs: dict[str, int] = {}  # charge point → number
        self.columns: tuple[list[str], ...] = ([], [], [], [], [])  # per place: its fields
        self._numbers: dict[str, int] = {}  # `_key` of a place → its number
        self._last = np.empty(0, np.int64)  # per charge point number: its last place
        self._objects: list[np.ndarray] = []  # station, unit, SIREN, entity as object arrays

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, number: int) -> Place:
        pdc, station, unit, siren, entity = self.columns
        return pdc[number], station[number], unit[number], siren[number], entity[number]

    def _arrays(self) -> list[np.ndarray]:
        """Station, unit, SIREN and entity of every place as object arrays (to take a page's
        expected values without one int object per row)."""
        if not self._objects or len(self._objects[0]) != len(self):
            self._objects = [np.asarray(values, dtype=object) for values in self.columns[1:]]
        return self._objects

    def pdc_numbers(self, names: Sequence[str], codes: Ints | None = None) -> npt.NDArray[np.int32]:
        """Numbers of charge points, new ones registered (one dict lookup per name, or per
        distinct name when some are new; with place `codes`, per code)."""
        if codes is not None and len(codes):
            firsts, slot = by_code(codes)
            return self.pdc_numbers(pick(names, firsts.tolist()))[slot]
        pdcs = self.pdcs
        known = np.fromiter(map(pdcs.get, names, repeat(-1)), np.int32, len(names))
        if not len(known) or known.min() >= 0:
            return known
        codes, distinct = factorize(names)
        numbers = [pdcs.get(name, -1) for name in distinct]
        for index, name in enumerate(distinct):
            if numbers[index] == -1:
                numbers[index] = pdcs[name] = len(pdcs)
        return np.asarray(numbers, np.int32)[codes]

    def numbers(self, batch: SessionBatch, pdcs: npt.NDArray[np.int32]) -> Ints:
        """Numbers of the rows' places (`pdcs`: their charge point numbers), new places
        registered. With the batch's `place_codes`, only the first row of each code is read."""
        if batch.place_codes is not None and len(batch):
            firsts, slot = by_code(batch.place_codes)
            return self._row_numbers(batch.take(firsts), pdcs[firsts])[slot]
        return self._row_numbers(batch, pdcs)

    def _row_numbers(self, batch: SessionBatch, pdcs: npt.NDArray[np.int32]) -> Ints:
        """`numbers`, row by row. A charge point's place is normally the one it had last (one
        database join): each row's other fields are compared with that place's, column by
        column as lists, and only the rows that differ (or whose charge point is new) are
        looked up."""
        key = pdcs.astype(np.int64)
        grow = len(self.pdcs) - len(self._last)
        if grow > 0:
            self._last = np.concatenate([self._last, np.full(grow, -1, np.int64)])
        numbers = self._last[key]
        others = (batch.station, batch.operational_unit, batch.siren, batch.entity)
        cached = np.flatnonzero(numbers >= 0)
        differ = numbers < 0
        if len(cached):
            places = numbers[cached]
            rows = None if len(cached) == len(key) else cached.tolist()
            for values, column in zip(self._arrays(), others, strict=True):
                expected = values[places].tolist()  # no int object per row made or freed
                got = column if rows is None else pick(column, rows)
                if expected != got:
                    differ[cached] |= np.fromiter(map(ne, expected, got), bool, len(cached))
        if differ.any():
            rows = np.flatnonzero(differ)
            numbers[rows] = self._look_up(batch, rows, key[rows])
            self._last[key[rows]] = numbers[rows]
        return numbers

    def _look_up(self, batch: SessionBatch, rows: Ints, key: Ints) -> Ints:
        """Place numbers of `rows` (charge point numbers `key`), new places registered; each
        distinct place looked up once (a charge point's rows are checked against its first
        one and factorised together only when they differ)."""
        listed = rows.tolist()
        fields = [
            pick(column, listed)
            for column in (
                batch.pdc,
                batch.station,
                batch.operational_unit,
                batch.siren,
                batch.entity,
            )
        ]
        firsts, slot = by_code(key)
        leaders = firsts[slot].tolist()
        for column in fields[1:]:
            if pick(column, leaders) != column:  # a charge point with several places
                for values in fields[1:]:
                    codes, found = factorize(values)
                    key, _ = factorize(key * len(found) + codes)
                firsts, slot = by_code(key)
                break
        found_numbers = self._numbers
        numbers = []
        for index in firsts.tolist():
            place = [column[index] for column in fields]
            name = _key(place)
            number = found_numbers.get(name)
            if number is None:
                number = found_numbers[name] = len(self)
                for values, value in zip(self.columns, place, strict=True):
                    values.append(value)
            numbers.append(number)
        return np.asarray(numbers, np.int64)[slot]
