"""Fixtures of the BlueCurrent tests: a simulated clock, a real engine context and a
simulator factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from collectors.bluecurrent.simulator import BlueCurrentSimulator, SimulatorOptions
from daemon.collector import CollectorContext
from daemon.emitter import Emitter
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.sessions import AcceptAll
from daemon.state import Checkpoints, StateDB
from tests.bluecurrent.support import Engine, FakeClock


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    db = StateDB(tmp_path / "state.db", synchronous="off")
    counters = Counters("bluecurrent")
    outbox = Outbox(db, Counters("outbox"))
    await outbox.start()
    checkpoints = Checkpoints(db, "bluecurrent")
    emitter = Emitter("bluecurrent", outbox, checkpoints, counters, AcceptAll())
    async with aiohttp.ClientSession() as http:
        ctx = CollectorContext(
            name="bluecurrent",
            emit=emitter,
            checkpoints=checkpoints,
            http=http,
            counters=counters,
            log=structlog.get_logger("chargeflux.bluecurrent"),
            state_dir=tmp_path,
        )
        found = Engine(ctx, outbox, db, counters)
        try:
            yield found
        finally:
            for task in found.tasks:
                task.cancel()
            await asyncio.gather(*found.tasks, return_exceptions=True)
    await outbox.close()
    db.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def simulator() -> Callable[..., BlueCurrentSimulator]:
    """A factory: `async with simulator(drop_every=10) as sim:`."""

    def make(**options: Any) -> BlueCurrentSimulator:
        return BlueCurrentSimulator(SimulatorOptions(**options))

    return make
