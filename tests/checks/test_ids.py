"""The engine memory's session id index (exact when ids share a hash) and sorted arrays."""

from __future__ import annotations

import numpy as np

from daemon.checks.ids import IdIndex
from daemon.checks.sorted_arrays import SortedArrays, ranges


def test_ids_sharing_a_hash_are_told_apart() -> None:
    """Ids given one hash are found each as itself, only in live rows."""
    sid = ["a", "b", "c", "d"]
    column = np.asarray([7, 7, 7, 5], np.int64)
    alive = np.ones(4, bool)
    index = IdIndex()
    found = index.claim(sid, column, sid, column, alive)
    assert found.tolist() == [-1, -1, -1, -1]
    assert len(index) == 4
    keys = np.asarray([7, 7, 7, 7, 5], np.int64)
    found = index.find(["c", "b", "a", "x", "d"], keys, sid, column, alive)
    assert found.tolist() == [2, 1, 0, -1, 3]
    sid.append("b")  # row 4: a new version of "b", the old row 1 dead
    column = np.append(column, 7)
    alive = np.asarray([True, False, True, True, True])
    found = index.claim(["b", "e"], np.asarray([7, 7], np.int64), sid, column, alive)
    assert found.tolist() == [4, -1]
    assert len(index) == 5
    alive[0] = False
    index.rebuild(column[alive])
    assert index.find(["a", "b", "c"], keys[:3], sid, column, alive).tolist() == [-1, 4, 2]
    assert len(index) == 3


def test_sorted_arrays_insert_and_keep_like_numpy() -> None:
    """`SortedArrays.insert` inserts like `np.insert` (growing past its buffers), `keep`
    filters, and `ranges` concatenates aranges."""
    arrays = SortedArrays(2)
    expected = np.empty(0, np.int64)
    for first in range(0, 3000, 500):
        values = np.arange(first, first + 500, dtype=np.int64)[::-1].copy() * 7 % 3001
        values.sort()
        where = np.searchsorted(arrays[0], values)
        landed = arrays.insert(where, (values, -values))
        expected = np.insert(expected, np.searchsorted(expected, values), values)
        assert arrays[0].tolist() == expected.tolist()
        assert arrays[1].tolist() == (-expected).tolist()
        assert arrays[0][landed].tolist() == values.tolist()
    arrays.keep(arrays[0] % 2 == 0)
    assert arrays[0].tolist() == [value for value in expected.tolist() if value % 2 == 0]
    assert ranges(np.asarray([2, 10]), np.asarray([3, 0])).tolist() == [2, 3, 4]
