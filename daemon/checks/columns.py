"""Vectorised per-session values of the ledger store: lookup keys, Paris months, energies.

Each takes whole columns (numpy arrays, lists of text) and returns an int64 array, with no
per-row Python objects beyond what the input already holds: a batch of 100,000 sessions
costs a few milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

__all__ = ["energy_ukwh", "month_labels", "session_keys"]

PARIS = ZoneInfo("Europe/Paris")

Ints = npt.NDArray[np.int64]

# Session key hashing (see `session_keys`): ids up to this many characters are hashed in
# numpy, longer ones (never seen in practice) one by one with blake2b.
_WIDE = 64
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# Energies beyond this many kWh are nonsense (and would overflow 64-bit millionths): they
# count as 0 in the totals, like non-finite ones.
_ENERGY_LIMIT = 1e12


def session_keys(source: str, session_ids: Sequence[str]) -> Ints:
    """The 64-bit lookup key of each session id of `source` (a hash; equal ids, equal keys).

    Computed in numpy over the ids' UTF-32 code units, two characters per 64-bit word: a
    multiply-rotate chain seeded by the source and the length, then the splitmix64
    finaliser. The values are part of the stored format: never change this function without
    rewriting `ledger_session.key`. Keys lie within ±2**62 (JSON and SQLite keep them exact).
    """
    count = len(session_ids)
    keys = np.empty(count, np.int64)
    if not count:
        return keys
    lengths = np.fromiter(map(len, session_ids), np.int64, count)
    seed = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=8).digest(), "little")
    long = lengths > _WIDE
    if long.any():
        for index in np.flatnonzero(long).tolist():
            digest = hashlib.blake2b(
                session_ids[index].encode("utf-8", "surrogatepass"),
                digest_size=8,
                key=seed.to_bytes(8, "little"),
            ).digest()
            keys[index] = int.from_bytes(digest, "little", signed=True) >> 2
        short = np.flatnonzero(~long)
        if short.size:
            keys[short] = session_keys(source, [session_ids[i] for i in short.tolist()])
        return keys
    columns = (int(lengths.max()) + 1) // 2
    width = max(2, 2 * columns)
    text = np.asarray(session_ids, dtype=f"<U{width}")
    words = text.view("<u8").reshape(count, width // 2)
    with np.errstate(over="ignore"):
        hashed = np.full(count, seed, np.uint64) ^ (lengths.astype(np.uint64) * _MUL)
        uniform = bool((lengths == lengths[0]).all())
        for column in range(columns):
            mixed = hashed ^ words[:, column]
            mixed = ((mixed << np.uint64(27)) | (mixed >> np.uint64(37))) * _MUL
            # A shorter id stops mixing at its own length, so its key does not depend on the
            # width of the batch it came in.
            hashed = mixed if uniform else np.where(lengths > 2 * column, mixed, hashed)
        hashed ^= hashed >> np.uint64(30)
        hashed *= _MIX1
        hashed ^= hashed >> np.uint64(27)
        hashed *= _MIX2
        hashed ^= hashed >> np.uint64(31)
    keys[:] = hashed.view(np.int64) >> 2
    return keys


def month_labels(start_ns: Ints) -> Ints:
    """The Europe/Paris month of each start as the integer YYYYMM (vectorised: the month
    boundaries of the years present, then one binary search per start)."""
    if not len(start_ns):
        return np.empty(0, np.int64)
    # UTC years, widened by one on each side: a Paris month starts at most 2 hours from UTC.
    years = np.unique(start_ns.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64))
    first, last = int(years.min()) + 1970 - 1, int(years.max()) + 1970 + 1
    # int64 nanoseconds span 1677-2262: a start outside them cannot be stored anyway.
    first, last = max(first, 1677), min(last, 2262)
    bounds: list[int] = []
    labels: list[int] = []
    for year in range(first, last + 1):
        for month in range(1, 13):
            moment = datetime(year, month, 1, tzinfo=PARIS)
            # Whole seconds since the epoch, exact (no float), then nanoseconds.
            bounds.append(int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()))
            labels.append(year * 100 + month)
    # Boundaries are whole seconds: comparing floored seconds is exact and cannot overflow.
    seconds = start_ns // 1_000_000_000
    found = np.searchsorted(np.asarray(bounds, np.int64), seconds, side="right") - 1
    return np.asarray(labels, np.int64)[np.clip(found, 0, len(labels) - 1)]


def energy_ukwh(energy: npt.NDArray[np.float64]) -> Ints:
    """`round(energy * 1e6)` (half to even, as Python rounds); non-finite or absurd → 0."""
    sane = np.isfinite(energy) & (np.abs(energy) < _ENERGY_LIMIT)
    return np.where(sane, np.rint(np.where(sane, energy, 0.0) * 1e6), 0.0).astype(np.int64)
