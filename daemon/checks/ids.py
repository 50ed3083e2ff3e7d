"""Session id → row lookup for the exclusion engine's memory, a page at a time.

The index is two arrays sorted by the ids' hashes (Python's own `hash` of each string,
cached by the string): the hash of every live session and its row. A page is looked up with
one `searchsorted` and its new ids added with one merge, instead of one dict operation per
session. A hash match is only a candidate: the id itself is compared, so colliding hashes
(several entries with one hash) stay exact.
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
    """Live session ids of one memory, by hash (rows of the memory's `sid` list)."""

    def __init__(self) -> None:
        self._table = SortedArrays(2)  # hashes, rows

    def __len__(self) -> int:
        return len(self._table)

    @property
    def hashes(self) -> Ints:
        """The hashes of the ids held, sorted."""
        return self._table[0]

    @property
    def rows(self) -> Ints:
        """The row of each hash's id."""
        return self._table[1]

    def _entries(self, keys: Ints, where: Ints | None = None) -> tuple[Ints, Ints]:
        """Per key, its first entry's position and the indexes of keys found at all."""
        if where is None:
            where = np.searchsorted(self.hashes, keys)
        count = len(self.hashes)
        if not count:
            return where, np.empty(0, np.int64)
        return where, np.flatnonzero(self.hashes[np.minimum(where, count - 1)] == keys)

    def find(
        self, ids: Sequence[str], keys: Ints, sid: Sequence[str], where: Ints | None = None
    ) -> Ints:
        """The row holding each of `ids` (with hashes `keys`), -1 for an id not held
        (`where`: the keys' `searchsorted` positions, when known)."""
        found = np.full(len(ids), -1, np.int64)
        where, hits = self._entries(keys, where)
        if not len(hits):
            return found
        rows = self.rows[where[hits]]
        same = np.fromiter(
            map(eq, map(sid.__getitem__, rows.tolist()), map(ids.__getitem__, hits.tolist())),
            bool,
            len(hits),
        )
        found[hits[same]] = rows[same]
        for index in hits[~same].tolist():  # the first entry of that hash is another id
            position = int(where[index]) + 1
            while position < len(self.hashes) and self.hashes[position] == keys[index]:
                row = int(self.rows[position])
                if sid[row] == ids[index]:
                    found[index] = row
                    break
                position += 1
        return found

    def claim(self, ids: Sequence[str], keys: Ints, rows: Ints, sid: Sequence[str]) -> Ints:
        """`find` for a page of distinct ids, then index the ids not held at their `rows`:
        the page's hashes sorted once, searched once (in order, so the search walks the
        index forwards) and merged in."""
        by_key = np.argsort(keys)
        keys = keys[by_key]
        where = np.searchsorted(self.hashes, keys)
        count = len(self.hashes)
        found = np.full(len(keys), -1, np.int64)
        hits = np.flatnonzero(self.hashes[np.minimum(where, count - 1)] == keys) if count else ()
        if len(hits):
            found[by_key] = self.find([ids[index] for index in by_key.tolist()], keys, sid, where)
        new = found[by_key] < 0
        self._table.insert(where[new], (keys[new], rows[by_key][new]))
        return found

    def add(self, keys: Ints, rows: Ints) -> None:
        """Index new ids (not held yet) with hashes `keys` at `rows`."""
        if not len(keys):
            return
        by_key = np.argsort(keys)
        keys = keys[by_key]
        self._table.insert(np.searchsorted(self.hashes, keys), (keys, rows[by_key]))

    def move(self, keys: Ints, old: Ints, new: Ints) -> None:
        """Point the entries of rows `old` (ids hashed to `keys`) at rows `new`."""
        if not len(keys):
            return
        where = np.searchsorted(self.hashes, keys)
        at = self.rows[np.minimum(where, len(self.rows) - 1)] == old
        self.rows[where[at]] = new[at]
        for index in np.flatnonzero(~at).tolist():  # behind another id of the same hash
            position = int(where[index])
            while self.rows[position] != old[index]:
                position += 1
            self.rows[position] = new[index]

    def keep(self, alive: Bools) -> None:
        """Drop the entries of rows no longer alive."""
        self._table.keep(alive[self.rows])

    def renumber(self, numbers: Ints) -> None:
        """Rows renumbered (`numbers[old row]` is the new one)."""
        rows = self.rows
        rows[:] = numbers[rows]
