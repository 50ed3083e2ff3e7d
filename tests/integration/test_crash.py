"""Crash test: SIGKILL the daemon at random moments, take InfluxDB away, lose and add nothing.

A child process runs the real `chargeflux run` (see `crash_child.py`) with a source that
emits numbered points 0, 1, 2, … without end, committing each batch with its checkpoint in
one transaction, into a real InfluxDB 1.x of our own. The test kills the child with SIGKILL
at random moments (at least 20 times, each time restarting it), and stops and restarts the
InfluxDB server several times meanwhile, so kills land while committing, while writing,
between a write and its acknowledgement, during backoff and while a backlog drains. A last,
clean run (SIGTERM) drains the outbox. Then the final checkpoint N must mean exactly the
points 0..N-1 in InfluxDB: N points, N distinct values, smallest 0, largest N-1.

Kill moments come from a seeded RNG; the seed is printed, and CHARGEFLUX_CRASH_SEED replays
a run. Progress is read from the child's state database (read-only) rather than slept for.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import unavailable
from tests.integration.crash_child import MEASUREMENT, SOURCE
from tests.servers import InfluxServer, ServiceUnavailable, wait_until

ROOT = Path(__file__).resolve().parents[2]
KILLS = 24
OUTAGES = 3
PROGRESS_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class State:
    """What the child has durably committed: its checkpoint and the outbox backlog."""

    next: int
    backlog: int
    dead_letters: int


def read_state(path: Path, *, read_only: bool = True) -> State | None:
    """The state database as an observer sees it (None before it is set up): read-only
    while a child runs; `read_only=False` once no child is left (a cleanly closed WAL
    database has no -shm file for a read-only connection to use)."""
    if not path.exists():
        return None
    try:
        mode = "ro" if read_only else "rw"
        conn = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=10)
        try:
            row = conn.execute(
                "SELECT value FROM checkpoints WHERE collector = ? AND key = 'next'", (SOURCE,)
            ).fetchone()
            backlog = conn.execute("SELECT COALESCE(SUM(n), 0) FROM outbox").fetchone()[0]
            dead = conn.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # tables not created yet
        return None
    return State(json.loads(row[0]) if row else 0, backlog, dead)


class ChildDaemon:
    """`chargeflux run` in a subprocess, with the `sequence` source registered."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_child", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._log.close()

    def terminate(self, timeout: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._log.close()
        return code


def steady_port() -> int:
    """A free loopback port below the ephemeral range. While our influxd is down for a
    restart, its port is free: an ephemeral one could be taken meanwhile by another
    process's free_port() or outgoing connection, and the restart would fail or, worse,
    find someone else's server there."""
    try:
        ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        first_ephemeral = int(ephemeral[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    picker = random.SystemRandom()
    for _ in range(200):
        port = picker.randrange(10_000, first_ephemeral)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def outage_plan(rng: random.Random) -> dict[int, str]:
    """Kill cycle → "stop"/"start" InfluxDB: OUTAGES outages of 1 to 3 kill cycles each."""
    plan: dict[int, str] = {}
    span = (KILLS - 2) // OUTAGES
    for index in range(OUTAGES):
        stop = index * span + rng.randint(1, span - 4)
        plan[stop] = "stop"
        plan[stop + rng.randint(1, 3)] = "start"
    return plan


def write_config(path: Path, state_dir: Path, influx: InfluxServer, database: str) -> None:
    config = {
        "state_dir": str(state_dir),
        "log": {"level": "info", "format": "json"},
        "sink": {"type": "influxdb", "url": influx.url, "database": database, "timeout_s": 5},
        "outbox": {
            "batch_size": 1000,
            "flush_interval_s": 0.05,
            "retry_initial_s": 0.05,
            "retry_max_s": 0.5,
            "drain_timeout_s": 120,
        },
        "metrics_interval_s": 1,
        "sources": {SOURCE: {"smallest_batch": 20, "largest_batch": 400, "pause_s": 0.01}},
    }
    path.write_text(json.dumps(config), encoding="utf-8")


def test_sigkill_and_influxdb_restarts_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """After 24 SIGKILLs and 3 InfluxDB outages, InfluxDB holds exactly points 0..N-1."""
    seed = int(os.environ.get("CHARGEFLUX_CRASH_SEED", random.randrange(2**32)))
    print(f"crash test seed: {seed} (CHARGEFLUX_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    influx = InfluxServer(tmp_path / "influxd", port=steady_port(), rpc_port=steady_port())
    try:
        influx.start()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
    state_db = tmp_path / "state" / "state.db"
    config, log = tmp_path / "params.json", tmp_path / "child.log"
    child: ChildDaemon | None = None
    try:
        database = influx.create_database("crash")
        write_config(config, tmp_path / "state", influx, database)
        plan = outage_plan(rng)
        assert sorted(plan.values()) == ["start"] * OUTAGES + ["stop"] * OUTAGES
        seen, influx_up, backlog_kills = 0, True, 0

        def wait_progress(beyond: int, what: str) -> State:
            """Wait until the running child has committed a checkpoint beyond `beyond`."""

            def progressed() -> bool:
                assert child is not None
                code = child.process.poll()
                assert code is None, f"the child daemon exited with {code} ({what})"
                state = read_state(state_db)
                return state is not None and state.next > beyond

            wait_until(progressed, PROGRESS_TIMEOUT_S, what)
            state = read_state(state_db)
            assert state is not None
            return state

        for cycle in range(KILLS):
            child = ChildDaemon(config, log)
            # a restarted child resumes from its last commit, never from before it
            state = wait_progress(seen, f"progress in cycle {cycle}")
            assert state.next >= seen, "a committed checkpoint went back"
            if plan.get(cycle) == "start":
                influx.start()
                influx_up = True
            target = state.next + rng.randint(100, 3000)
            wait_progress(target, f"{target} points in cycle {cycle}")
            if plan.get(cycle) == "stop":
                influx.stop()
                influx_up = False
                target += rng.randint(100, 3000)
                wait_progress(target, f"commits with InfluxDB down in cycle {cycle}")
            time.sleep(rng.uniform(0, 0.2))  # a random instant between two polls
            before = read_state(state_db)
            child.kill()
            child = None
            assert before is not None
            backlog_kills += before.backlog > 0
            # what survived the kill (the child may have committed after `before` was read):
            # the next run must commit beyond it, so waiting for progress proves it is running
            after = read_state(state_db)
            assert after is not None and after.next >= before.next
            seen = after.next
        if not influx_up:
            influx.start()

        child = ChildDaemon(config, log)
        wait_progress(seen, "progress in the final run")
        assert child.terminate(timeout=180) == 0, "the clean run did not drain and exit 0"
        child = None
        final = read_state(state_db, read_only=False)
        assert final is not None
        print(f"final checkpoint {final.next}; kills with a backlog: {backlog_kills}/{KILLS}")
        assert final.backlog == 0, "the clean run left points in the outbox"
        assert final.dead_letters == 0
        assert backlog_kills >= OUTAGES, "no kill found points waiting in the outbox"

        rows = influx.rows(
            f'SELECT count("n") AS points, count(distinct("n")) AS distinct_n, '
            f'min("n") AS lowest, max("n") AS highest FROM "{MEASUREMENT}"',
            database,
        )
        assert len(rows) == 1
        got = {key: rows[0][key] for key in ("points", "distinct_n", "lowest", "highest")}
        total = final.next
        assert got == {"points": total, "distinct_n": total, "lowest": 0, "highest": total - 1}
    except BaseException:
        if log.exists():
            print("---- child log (tail) ----")
            print(log.read_text(encoding="utf-8", errors="replace")[-6000:])
        raise
    finally:
        if child is not None:
            child.kill()
        influx.stop()
