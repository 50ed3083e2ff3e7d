"""Fixtures of the Enedis tests: a simulated clock, the simulator, a local runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from collectors.enedis.quota import SimulatedClock
from collectors.enedis.simulator import EnedisSimulator
from tests.enedis.harness import NOW, Harness


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW)


@pytest.fixture
async def sim(clock: SimulatedClock) -> AsyncIterator[EnedisSimulator]:
    simulator = EnedisSimulator(clock)
    async with simulator.running():
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def harness(
    tmp_path: Path, http: aiohttp.ClientSession, clock: SimulatedClock
) -> AsyncIterator[Harness]:
    runtime = await Harness(tmp_path, http, clock).start()
    yield runtime
    await runtime.close()
