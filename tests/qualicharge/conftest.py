"""Fixtures for the QualiCharge tests: simulator pieces, a harness, an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectors.qualicharge.config import QualiChargeConfig
from collectors.qualicharge.fake import make_fleet
from collectors.qualicharge.simulator import SimulatedDatabase, build_database
from collectors.qualicharge.status_api import StatusApi, run_status_api
from tests.qualicharge.harness import Harness


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def harness(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    state = tmp_path / "state"
    state.mkdir()
    made = await Harness(state, http).start()
    yield made
    await made.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[SimulatedDatabase]:
    """A simulated QualiCharge database in SQLite: 40 charge points, 2000 sessions."""
    database = build_database(f"sqlite:///{tmp_path / 'qc.sqlite'}", pdcs=40, sessions=2000)
    yield database
    database.engine.dispose()


@pytest.fixture
async def status_api() -> AsyncIterator[tuple[StatusApi, str]]:
    api = StatusApi(make_fleet(20), clock=Clock())
    async with run_status_api(api) as base_url:
        yield api, base_url


def config_for(database: SimulatedDatabase, url: str, **overrides: Any) -> QualiChargeConfig:
    """A config reading `database` (all its operational units), with no settling delay."""
    block: dict[str, Any] = {
        "database_url": url,
        "operational_units": list(database.fleet.operational_units),
        "settle_s": 0,
        "page_size": 300,
    }
    block.update(overrides)
    return QualiChargeConfig.model_validate(block)
