"""SIGKILL mid-backfill: the restarted process completes without re-asking finished windows."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import aiohttp

from collectors.enedis.plan import start_bound
from collectors.enedis.quota import SimulatedClock
from collectors.enedis.simulator import EnedisSimulator
from tests.enedis.harness import NOW, Harness

ROOT = Path(__file__).resolve().parents[2]
PRM = "22516914714270"
CHILD = """
import asyncio, json, sys
from pathlib import Path
import aiohttp
from collectors.enedis.quota import SimulatedClock
from tests.enedis.harness import NOW, Harness, config

async def main(url, state):
    async with aiohttp.ClientSession() as http:
        runtime = Harness(Path(state), http, SimulatedClock(NOW),
                          report=lambda c: print(json.dumps(c), flush=True))
        await runtime.start()
        cfg = config(url, [{"prm": sys.argv[3], "daily": False, "max_power": False}])
        await runtime.collector(cfg).sync()
        await runtime.close()
    print("DONE", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def _child(url: str, state: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        url,
        str(state),
        PRM,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )


async def _lines(process: asyncio.subprocess.Process, until: int | None) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while until is None or len(lines) < until:
        raw = await asyncio.wait_for(process.stdout.readline(), 60)
        if not raw:
            break
        lines.append(raw.decode().strip())
    return lines


async def test_sigkill_mid_backfill_then_restart(tmp_path: Path) -> None:
    """After kill -9 and a restart, committed windows are never requested again."""
    simulator = EnedisSimulator(SimulatedClock(NOW), per_second=10**6, per_hour=10**6)
    async with simulator.running() as url:
        first_run = await _child(url, tmp_path)
        reported = await _lines(first_run, until=10)
        first_run.send_signal(signal.SIGKILL)
        await first_run.wait()
        assert "DONE" not in reported and len(reported) == 10
        key = f"stream/{PRM}/load_curve/consumption"
        committed_from = date.fromisoformat(json.loads(reported[-1])[key]["done_from"])
        asked_before = sum(simulator.window_requests.values())

        second_run = await _child(url, tmp_path)
        tail = await _lines(second_run, until=None)
        assert await second_run.wait() == 0 and tail[-1] == "DONE"

    requests = Counter({(k[3], k[4]): n for k, n in simulator.window_requests.items()})
    today = date(2026, 10, 20)
    days = (today - start_bound("load_curve", today, history_months=36)).days
    assert len(requests) == math.ceil(days / 7)
    assert asked_before < len(requests)  # the kill really happened mid-backfill
    for (first, _end), count in requests.items():
        if date.fromisoformat(first) >= committed_from:
            assert count == 1, first
    assert sum(requests.values()) - len(requests) <= 1  # only the window in flight at the kill

    async with aiohttp.ClientSession() as http:
        runtime = await Harness(tmp_path, http, SimulatedClock(NOW)).start()
        points = await runtime.points("enedis_load_curve")
        await runtime.close()
    assert len(points) == len({p.time_ns for p in points}) == days * 48
