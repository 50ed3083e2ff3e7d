"""Fixtures for the eConnect tests: the simulator, a config aimed at it, a real context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from collectors.econnect.config import EconnectConfig
from collectors.econnect.simulator import MasterdataSimulator, run_simulator
from daemon.collector import CollectorContext
from daemon.emitter import Emitter
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import Point, parse, split_lines
from daemon.sessions import AcceptAll
from daemon.state import Checkpoints, StateDB

SimulatorFactory = Callable[..., AbstractAsyncContextManager[MasterdataSimulator]]


@pytest.fixture
def simulator_factory() -> SimulatorFactory:
    """`async with simulator_factory(**options) as sim:` a started simulator."""
    return run_simulator


@pytest.fixture
async def simulator() -> AsyncIterator[MasterdataSimulator]:
    async with run_simulator() as sim:
        yield sim


def config_for(sim: MasterdataSimulator, **overrides: Any) -> EconnectConfig:
    """A config block aimed at `sim`, with fast retries."""
    block: dict[str, Any] = {
        "base_url": sim.base_url,
        "business_partner": sim.business_partner,
        "username": sim.username,
        "password": sim.password,
        "retries": 3,
        "retry_max_wait_s": 0.01,
    }
    block.update(overrides)
    return EconnectConfig.model_validate(block)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Harness:
    """A real state DB, outbox and emitter around a `CollectorContext`."""

    def __init__(self, state_dir: Path, http: aiohttp.ClientSession) -> None:
        self.state_dir = state_dir
        self.db = StateDB(state_dir / "state.db")
        self.counters = Counters("econnect")
        self.outbox = Outbox(self.db, Counters("outbox"))
        self.checkpoints = Checkpoints(self.db, "econnect")
        emitter = Emitter("econnect", self.outbox, self.checkpoints, self.counters, AcceptAll())
        self.ctx = CollectorContext(
            name="econnect",
            emit=emitter,
            checkpoints=self.checkpoints,
            http=http,
            counters=self.counters,
            log=structlog.get_logger("test.econnect"),
            state_dir=state_dir,
        )

    async def committed(self) -> list[Point]:
        """Every point committed to the outbox so far."""
        batch = await self.outbox.read_batch(1_000_000)
        if batch is None:
            return []
        return [parse(line) for line in split_lines(batch.body.decode())]


@pytest.fixture
async def harness(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    made = Harness(tmp_path / "state", http)
    await made.outbox.start()
    yield made
    await made.outbox.close()
    made.db.close()
