"""eConnect station master data: a scheduled paged pull, `econnect_station` points, and the
weekly fleet report (`chargeflux report stations`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from collectors.econnect.cli import add_cli
from collectors.econnect.collector import EconnectCollector
from collectors.econnect.config import EconnectConfig
from daemon.collector import DemoEnv, SourcePlugin

__all__ = ["PLUGIN", "EconnectConfig"]


@asynccontextmanager
async def _demo(env: DemoEnv) -> AsyncIterator[dict[str, Any]]:
    """Start the Masterdata simulator on a free local port; yield the config aimed at it."""
    from collectors.econnect.simulator import run_simulator

    options = env.options.get("econnect", {})
    async with run_simulator(
        bad_records=int(options.get("bad_records", 3)), failures=int(options.get("failures", 1))
    ) as simulator:
        yield {
            "base_url": simulator.base_url,
            "business_partner": simulator.business_partner,
            "username": simulator.username,
            "password": simulator.password,
            "retry_max_wait_s": 0.5,
        }


PLUGIN: SourcePlugin[EconnectConfig] = SourcePlugin(
    name="econnect",
    config_model=EconnectConfig,
    create=EconnectCollector,
    demo=_demo,
    add_cli=add_cli,
)
