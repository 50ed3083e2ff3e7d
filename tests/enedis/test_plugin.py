"""The plugin through the real runtime: the demo block runs `--once` into the embedded store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiohttp

from collectors.enedis import PLUGIN, EnedisConfig
from daemon.collector import DemoEnv
from tests.helpers import run_once, stored_points


async def test_demo_block_runs_once_through_the_daemon(tmp_path: Path) -> None:
    """The demo hook's config validates and `run --once` stores curves, daily and anomalies."""
    assert PLUGIN.name == "enedis" and PLUGIN.demo is not None
    async with aiohttp.ClientSession() as http:
        env = DemoEnv(workdir=tmp_path, http=http, options={"enedis_history_days": 3})
        async with PLUGIN.demo(env) as block:
            EnedisConfig.model_validate(block)
            code = await run_once(tmp_path / "state", {"enedis": block})
    assert code == 0
    curve = await stored_points(tmp_path / "state", "enedis_load_curve")
    streams = Counter((p.tags["prm"], p.tags["direction"]) for p in curve)
    assert streams[("12655648759651", "production")] == streams[("12655648759651", "consumption")]
    assert streams[("22516914714270", "consumption")] in {142, 144, 146}  # DST-proof
    assert {prm for prm, direction in streams if direction == "production"} == {"12655648759651"}
    prms = {p.tags["prm"] for p in curve}
    assert prms == {"22516914714270", "12655648759651", "42900589957123"}
    assert {p.tags["period"] for p in curve} == {"HC", "HP"}
    anomalies = Counter(p.tags["rule"] for p in await stored_points(tmp_path / "state", "anomaly"))
    assert anomalies["STREAM_DISABLED"] == 1 and anomalies["OVERPOWER"] > 0
    assert len(await stored_points(tmp_path / "state", "enedis_daily")) > 0
