"""Parallel arrays kept in one sorted order and merged into a page at a time.

The engine's memory keeps a few such arrays (rows in the seed's order and their coarse keys;
session id hashes and their rows), each up to a million entries, and inserts a page of
thousands of entries into them at once. `SortedArrays` does each merge into a second set of
buffers kept from the previous merge, so no large array is allocated (and faulted in) per
page, and the positions the page lands at are computed once for all its arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["SortedArrays", "ranges"]

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def ranges(lows: Ints, lengths: Ints) -> Ints:
    """The concatenation of `arange(low, low + length)` for each pair."""
    total = int(lengths.sum())
    if not total:
        return np.empty(0, np.int64)
    ends = np.cumsum(lengths)
    return np.repeat(lows - (ends - lengths), lengths) + np.arange(total)


def _grown(buffer: np.ndarray, need: int) -> np.ndarray:
    return buffer if len(buffer) >= need else np.empty(max(need, 4 * len(buffer)), buffer.dtype)


class SortedArrays:
    """Arrays of one length (`size`), views of double buffers; `insert` merges a page in."""

    def __init__(self, count: int) -> None:
        self.size = 0
        self._live = [np.empty(1024, np.int64) for _ in range(count)]
        self._spare = [np.empty(1024, np.int64) for _ in range(count)]
        self._old = np.empty(1024, bool)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Ints:
        """Array `index` (a view: valid until the next change)."""
        return self._live[index][: self.size]

    def _swap(self, size: int) -> None:
        self._live, self._spare = self._spare, self._live
        self.size = size

    def insert(self, where: Ints, values: Sequence[Ints]) -> Ints:
        """Insert `values[i]` into array `i` before positions `where` (sorted, as
        `np.insert`); returns the positions the values landed at."""
        count = len(where)
        landed = where + np.arange(count)
        if not count:
            return landed
        total = self.size + count
        self._spare = [_grown(buffer, total) for buffer in self._spare]
        self._old = _grown(self._old, total)
        old = self._old[:total]
        old.fill(True)
        old[landed] = False
        for live, spare, value in zip(self._live, self._spare, values, strict=True):
            out = spare[:total]
            out[landed] = value
            out[old] = live[: self.size]
        self._swap(total)
        return landed

    def keep(self, kept: Bools) -> None:
        """Keep only the entries where `kept` (one per entry) is true."""
        size = int(np.count_nonzero(kept))
        for live, spare in zip(self._live, self._spare, strict=True):
            np.compress(kept, live[: self.size], out=spare[:size])
        self._swap(size)
