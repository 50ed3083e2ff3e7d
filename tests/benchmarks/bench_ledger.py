"""Benchmark: writing judged sessions to the ledger — the columnar store vs the row ledger.

    flock /tmp/bench.lock python tests/benchmarks/bench_ledger.py [--sessions 1000000]
        [--batches 50000,5000] [--pdcs 4000]

The same sessions for both contenders: random uuid4 session ids over `--pdcs` charge points,
in start order (how QualiCharge delivers them), every one new to the ledger, as the engine
passes them after judging. Each contender writes into its own real state database
(`daemon.state.StateDB`: WAL, synchronous=FULL, the 64 MB page cache it sets),
one transaction per batch, batches interleaved (store, ledger, store, ledger, ...) so both see
the same machine load while the ledger grows to `--sessions` rows.

1. store: `daemon.checks.store.write_verdicts(conn, batch, flags, known)` on a `SessionBatch`;
2. ledger: the row ledger's writer, `tests.checks.row_ledger.write_records(conn, source, fresh,
   [])`, on (Record, flags) built
   with `ledger.session_record` outside the timed region (its columnar adapter would add the
   conversion).

Measured in CPU time of this process (`time.process_time`: Python, SQLite and the kernel's
WAL writes and checkpoints; not the wait for fsync). Prints µs per row for the whole run and
for the last fifth (the ledger near its final size), per batch size, and the ratio.
Exit status: 0 when the store meets 5 µs/row at the first batch size, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from daemon.checks import store  # noqa: E402
from daemon.records import NO_TIME, SessionBatch  # noqa: E402
from daemon.state import StateDB, in_transaction  # noqa: E402
from tests.checks import row_ledger as ledger  # noqa: E402

SOURCE = "qualicharge"
_ROW_WRITER = ledger.write_records
TARGET_US = 5.0
_T0 = 1_782_864_000 * 1_000_000_000  # 2026-07-01T00:00:00Z


def make_sessions(count: int, pdcs: int, seed: int = 7) -> SessionBatch:
    """`count` sessions over `pdcs` charge points, in start order, over about a month."""
    rng = np.random.default_rng(seed)
    names = [f"FR{index % 97:03d}P{index:07d}" for index in range(pdcs)]
    stations = [f"FR{index % 97:03d}S{index // 4:06d}" for index in range(pdcs)]
    units = [station[:5] for station in stations]
    sirens = [f"{100_000_000 + (index // 400) * 7:09d}" for index in range(pdcs)]
    powers = rng.choice([7.4, 11.0, 22.0, 50.0, 150.0], pdcs)
    which = rng.integers(0, pdcs, count)
    gaps = rng.integers(0, 2 * 31 * 86_400 * 10**9 // count, count)
    start = _T0 + np.cumsum(gaps) // 1000 * 1000
    end = start + rng.integers(60, 6 * 3600, count) * 10**9
    picks = which.tolist()
    return SessionBatch(
        source=SOURCE,
        session_id=[str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(count)],
        pdc=[names[i] for i in picks],
        station=[stations[i] for i in picks],
        operational_unit=[units[i] for i in picks],
        siren=[sirens[i] for i in picks],
        entity=[f"Operator {sirens[i][-3:]}" for i in picks],
        start_ns=start.astype(np.int64),
        end_ns=end.astype(np.int64),
        energy_kwh=np.round(rng.gamma(2.0, 8.0, count), 3),
        max_power_kw=powers[which],
        updated_ns=np.where(rng.random(count) < 0.9, end + 10**9, NO_TIME).astype(np.int64),
    )


def _open(workdir: Path, name: str) -> StateDB:
    return StateDB(workdir / f"{name}.db")


def _timed(db: StateDB, write: Callable[[sqlite3.Connection], None]) -> float:
    gc.collect()
    began = time.process_time()
    db.run_sync(lambda conn: in_transaction(conn, write))
    return time.process_time() - began


def run(sessions: SessionBatch, batch: int, workdir: Path) -> tuple[float, float, float, float]:
    """(store all, store last fifth, ledger all, ledger last fifth) in µs per row."""
    new_db, old_db = _open(workdir, f"store-{batch}"), _open(workdir, f"ledger-{batch}")
    new_db.run_sync(store.ensure_schema)
    old_db.run_sync(ledger.ensure_schema)
    count = len(sessions)
    tail_from = count - count // 5
    totals = [0.0, 0.0, 0.0, 0.0]
    tail_rows = 0
    try:
        for first in range(0, count, batch):
            rows = np.arange(first, min(first + batch, count))
            part = sessions.take(rows)
            flags = np.zeros(len(part), np.int64)
            flags[::50] = 64  # a few excluded sessions (OVLP)
            known = np.zeros(len(part), bool)
            fresh = [
                (ledger.session_record(part.session(index), flag), flag)
                for index, flag in enumerate(flags.tolist())
            ]
            spent_new = _timed(
                new_db,
                lambda conn, part=part, flags=flags, known=known: store.write_verdicts(
                    conn, part, flags, known
                ),
            )
            spent_old = _timed(
                old_db,
                lambda conn, fresh=fresh: _ROW_WRITER(conn, SOURCE, fresh, []),
            )
            totals[0] += spent_new
            totals[2] += spent_old
            if first >= tail_from or first + batch >= count:
                totals[1] += spent_new
                totals[3] += spent_old
                tail_rows += len(part)
    finally:
        new_db.close()
        old_db.close()
    tail_rows = max(tail_rows, 1)
    return (
        totals[0] / count * 1e6,
        totals[1] / tail_rows * 1e6,
        totals[2] / count * 1e6,
        totals[3] / tail_rows * 1e6,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--batches", default="50000,5000")
    parser.add_argument("--pdcs", type=int, default=4000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.batches.split(",")]
    print(f"building {args.sessions:,} sessions over {args.pdcs:,} charge points ...")
    sessions = make_sessions(args.sessions, args.pdcs)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        for size in sizes:
            print(f"batches of {size:,} ...", flush=True)
            results[size] = run(sessions, size, Path(tmp))
    print()
    print(f"CPU µs per session, ledger growing to {args.sessions:,} rows")
    print(f"{'batch':>8} {'store':>8} {'store*':>8} {'ledger':>8} {'ledger*':>8} {'ratio*':>7}")
    for size, (new_all, new_tail, old_all, old_tail) in results.items():
        print(
            f"{size:>8,} {new_all:>8.2f} {new_tail:>8.2f} {old_all:>8.2f} {old_tail:>8.2f} "
            f"{old_tail / new_tail:>6.1f}x"
        )
    print("(* the last fifth of the rows: the ledger near its final size)")
    met = results[sizes[0]][1] <= TARGET_US
    print(f"target: store <= {TARGET_US} µs/row at {sizes[0]:,}: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
