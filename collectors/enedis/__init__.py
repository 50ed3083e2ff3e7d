"""Enedis: Linky load curves, daily energy and max power (Data Connect 2026, Conso API, v5).

`PLUGIN` is how the engine knows the source; `demo` starts the simulator with the sandbox's
fake clients and yields a config block aimed at it (three weeks of history, so the demo
finishes in seconds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from collectors.enedis.collector import EnedisCollector
from collectors.enedis.config import EnedisConfig
from daemon.collector import DemoEnv, SourcePlugin

__all__ = ["PLUGIN", "EnedisCollector", "EnedisConfig"]


@asynccontextmanager
async def _demo(env: DemoEnv) -> AsyncIterator[dict[str, Any]]:
    from collectors.enedis.simulator import EnedisSimulator

    simulator = EnedisSimulator()
    async with simulator.running("127.0.0.1", 0) as url:
        yield {
            "mode": "data_connect",
            "base_url": url,
            "client_id": "demo-client",
            "client_secret": "demo-secret",
            "history_days": int(env.options.get("enedis_history_days", 21)),
            "offpeak_hours": ["22:00-06:00"],
            "prms": [
                {"prm": "22516914714270", "subscribed_power_kva": 3},
                {"prm": "12655648759651", "production": True},
                {"prm": "42900589957123", "subscribed_power_kva": 9},
                {"prm": "26584978546985", "subscribed_power_kva": 6},
            ],
        }


PLUGIN: SourcePlugin[EnedisConfig] = SourcePlugin(
    name="enedis", config_model=EnedisConfig, create=EnedisCollector, demo=_demo
)
