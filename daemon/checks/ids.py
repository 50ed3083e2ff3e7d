"""Session id → row lookup for the exclusion engine's memory, a page at a time.

The index is one sorted array: the hash (Python's own `hash` of the string, cached by the
string) of every live session's id; the memory keeps each row's hash in a column. A page is
looked up with one `searchsorted` and its new ids merged in at once, instead of one dict
operation per session. A hash found is only a candidate: the rows holding it are read from
the column and their ids compared, so ids sharing a hash stay exact. Nearly every session of
a page is new, so that search through the column is rare (corrections and replays).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import eq

import numpy as np
import numpy.typing as npt

from daemon.checks.sorted_arrays import SortedArrays

__all__ = ["IdIndex", "hashes"]

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def hashes(ids: Sequence[str]) -> Ints:
    """The hash of each id."""
    return np.fromiter(map(hash, ids), np.int64, len(ids))


class IdIndex:
    """The hashes of the live session ids of one memory, sorted (a multiset)."""

    def __init__(self) -> None:
        self._table = SortedArrays(1)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def hashes(self) -> Ints:
        """The hashes of the ids held, sorted."""
        return self._table[0]

    def find(
        self, ids: Sequence[str], keys: Ints, sid: Sequence[str], column: Ints, alive: Bools
    ) -> Ints:
        """The live row holding each of `ids` (hashed to `keys`), -1 for an id not held;
        `column` and `alive` give each row's hash and whether it is live."""
        found = np.full(len(ids), -1, np.int64)
        held = self.hashes
        if not len(held):
            return found
        where = np.searchsorted(held, keys)
        hits = np.flatnonzero(held[np.minimum(where, len(held) - 1)] == keys)
        if not len(hits):
            return found
        rows = np.flatnonzero(np.isin(column, keys[hits]) & alive)
        rows = rows[np.argsort(column[rows], kind="stable")]
        row_keys = column[rows]
        at = np.minimum(np.searchsorted(row_keys, keys[hits]), len(rows) - 1)
        first = rows[at]
        same = np.fromiter(
            map(eq, map(sid.__getitem__, first.tolist()), map(ids.__getitem__, hits.tolist())),
            bool,
            len(hits),
        )
        found[hits[same]] = first[same]
        for index, position in zip(hits[~same].tolist(), at[~same].tolist(), strict=True):
            while position < len(rows) and row_keys[position] == keys[index]:
                row = int(rows[position])
                if sid[row] == ids[index]:  # another id of the same hash came first
                    found[index] = row
                    break
                position += 1
        return found

    def claim(
        self,
        ids: Sequence[str],
        keys: Ints,
        sid: Sequence[str],
        column: Ints,
        alive: Bools,
    ) -> Ints:
        """`find` for a page of distinct ids, then index those not held: the page's hashes
        sorted once and searched once (in order, so the search walks the index forwards)."""
        ordered = np.sort(keys)
        held = self.hashes
        where = np.searchsorted(held, ordered)
        if len(held) and (held[np.minimum(where, len(held) - 1)] == ordered).any():
            found = self.find(ids, keys, sid, column, alive)
            ordered = np.sort(keys[found < 0])
            where = np.searchsorted(held, ordered)
        else:
            found = np.full(len(ids), -1, np.int64)
        self._table.insert(where, (ordered,))
        return found

    def rebuild(self, column: Ints) -> None:
        """Index exactly the hashes of `column` (those of the live rows)."""
        self._table = SortedArrays(1)
        keys = np.sort(column)
        self._table.insert(np.zeros(len(keys), np.int64), (keys,))
