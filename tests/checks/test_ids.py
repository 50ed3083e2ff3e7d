"""The engine memory's session id index stays exact when ids share a hash."""

from __future__ import annotations

import numpy as np

from daemon.checks.ids import IdIndex, merge, ranges


def test_ids_sharing_a_hash_are_told_apart() -> None:
    """Ids given one hash are found, moved and dropped each as itself."""
    sid = ["a", "b", "c", "d"]
    index = IdIndex()
    same = np.full(3, 7, np.int64)
    index.add(same, np.arange(3, dtype=np.int64))
    index.add(np.asarray([5], np.int64), np.asarray([3], np.int64))
    found = index.find(["c", "b", "a", "x", "d"], np.asarray([7, 7, 7, 7, 5]), sid)
    assert found.tolist() == [2, 1, 0, -1, 3]
    sid.append("b")  # row 4: a new version of "b"
    index.move(np.asarray([7], np.int64), np.asarray([1]), np.asarray([4]))
    assert index.find(["b", "a"], np.asarray([7, 7]), sid).tolist() == [4, 0]
    alive = np.asarray([False, False, True, True, True])
    index.keep(alive)
    assert index.find(["a", "b", "c"], np.asarray([7, 7, 7]), sid).tolist() == [-1, 4, 2]
    assert len(index) == 3


def test_merge_and_ranges_match_numpy() -> None:
    """`merge` inserts like `np.insert`; `ranges` concatenates aranges."""
    array = np.asarray([1, 3, 5, 7])
    where = np.asarray([0, 2, 2, 4])
    values = np.asarray([0, 4, 4, 8])
    (merged,) = merge((array,), where, (values,))
    assert merged.tolist() == np.insert(array, where, values).tolist()
    assert ranges(np.asarray([2, 10]), np.asarray([3, 0])).tolist() == [2, 3, 4]
