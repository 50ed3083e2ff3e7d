"""The engine memory's neighbours: the session before each one in the seed's order."""

from __future__ import annotations

import numpy as np

from daemon.checks.memory import Memory
from tests.checks.test_places import _batch

HOUR = 3600 * 10**9


def test_previous_rows_follow_the_seed_order_within_runs_of_duplicates() -> None:
    """Before each session: the session before its run of equal keys, or within the run the
    one before it by session id; none for a charge point's first session."""
    rows = [("FRA01", "ST1", "FRA", "111", "e")] * 5 + [("FRA02", "ST1", "FRA", "111", "e")]
    batch = _batch(rows, None)
    ids = ["c", "early", "a", "b", "late", "other"]
    starts = np.asarray([5, 1, 5, 5, 9, 5], np.int64) * HOUR
    batch = type(batch)(
        **{
            **{name: getattr(batch, name) for name in batch.__slots__},
            "session_id": ids,
            "start_ns": starts,
            "end_ns": starts + HOUR,
        }
    )
    memory = Memory()
    placed, _ = memory.append(batch, np.zeros(len(ids), np.int64), memory.pdc_numbers(batch.pdc))
    memory.place(placed)
    found = memory.previous_rows(placed)
    named = [None if row < 0 else ids[row] for row in found.tolist()]
    assert dict(zip(ids, named, strict=True)) == {
        "early": None,
        "a": "early",
        "b": "a",
        "c": "b",
        "late": "c",
        "other": None,
    }
