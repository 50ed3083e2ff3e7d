"""The `chargeflux demo` hook: a BlueCurrent simulator and the config block aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from daemon.collector import DemoEnv

__all__ = ["DEMO_SIREN", "demo"]

DEMO_SIREN = "732829320"
"""A SIREN that passes the Luhn check (the demo's charge point operator)."""


@asynccontextmanager
async def demo(env: DemoEnv) -> AsyncIterator[dict[str, Any]]:
    """Start the simulator on 127.0.0.1 (free ports) and yield `sources.bluecurrent`.

    Options (`env.options["bluecurrent"]`): `charge_points` (default 5), `push_rate`
    messages/s (20), `push_total` (100000)."""
    from collectors.bluecurrent.simulator import BlueCurrentSimulator, SimulatorOptions

    wanted = env.options.get("bluecurrent", {})
    options = SimulatorOptions(
        charge_points=int(wanted.get("charge_points", 5)),
        push_rate=float(wanted.get("push_rate", 20.0)),
        push_total=int(wanted.get("push_total", 100_000)),
    )
    async with BlueCurrentSimulator(options) as sim:
        sites = {
            evse: {"station": f"FRBCUP{evse}", "max_power_kw": 22.0 if i % 2 else 11.0}
            for i, evse in enumerate(sim.data.evse_ids)
        }
        yield {
            "enabled": True,
            "api_token": options.api_token,
            "ws_url": sim.ws_url,
            "api_url": sim.api_url,
            "sites": sites,
            "default_site": {"operational_unit": "FRBCU", "siren": DEMO_SIREN},
            "transactions_every_s": 60.0,
        }
