"""QualiCharge: charging sessions from the QualiCharge database (judged by the exclusion
engine, stored as `charging_session` and `anomaly` points and kept in the session ledger)
and the latest charge point statuses from the QualiCharge API (`qualicharge_status`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from collectors.qualicharge.collector import QualiChargeCollector
from collectors.qualicharge.config import QualiChargeConfig
from daemon.collector import DemoEnv, SourcePlugin

__all__ = ["PLUGIN", "QualiChargeConfig"]


@asynccontextmanager
async def _demo(env: DemoEnv) -> AsyncIterator[dict[str, Any]]:
    """A simulated QualiCharge database (SQLite) and status API; the config aimed at them."""
    from collectors.qualicharge.simulator import run_simulator

    options = env.options.get("qualicharge", {})
    async with run_simulator(
        env.workdir / "qualicharge",
        pdcs=int(options.get("pdcs", 60)),
        sessions=int(options.get("sessions", 6000)),
    ) as simulator:
        yield {
            "database_url": simulator.database_url,
            "operational_units": simulator.operational_units,
            "settle_s": 0,
            "api": {
                "base_url": simulator.base_url,
                "username": simulator.api.username,
                "password": simulator.api.password,
                "retry_max_wait_s": 1.0,
            },
        }


PLUGIN: SourcePlugin[QualiChargeConfig] = SourcePlugin(
    name="qualicharge",
    config_model=QualiChargeConfig,
    create=QualiChargeCollector,
    demo=_demo,
)
