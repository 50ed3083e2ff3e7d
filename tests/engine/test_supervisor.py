"""The supervisor: scheduling of interval jobs and log-once failure reporting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.pipeline import Pipeline
from daemon.supervisor import Supervisor
from tests.engine.probes import LogWatch, watch_logs
from tests.helpers import make_config


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    yield from watch_logs()


@pytest.fixture
async def supervise(state_dir: Path) -> AsyncIterator[Any]:
    """Start a supervisor over the given sources on a fresh pipeline; stop both afterwards."""
    running: list[tuple[Supervisor, Pipeline, aiohttp.ClientSession]] = []

    async def start(sources: dict[str, Any]) -> Supervisor:
        config = make_config(state_dir, sources)
        pipeline = Pipeline(config)
        await pipeline.start()
        http = aiohttp.ClientSession()
        supervisor = Supervisor(config, pipeline, http)
        supervisor.build()
        supervisor.start()
        running.append((supervisor, pipeline, http))
        return supervisor

    yield start
    for supervisor, pipeline, http in running:
        await supervisor.stop()
        await http.close()
        await pipeline.close(1)


async def test_a_job_not_run_at_start_runs_on_its_interval(supervise: Any, logs: LogWatch) -> None:
    """A job with run_at_start=False is scheduled (not paused) and runs after its interval."""
    await supervise({"counter": {"run_at_start": False, "every_s": 0.1, "per_run": 2}})
    assert logs.named("counter_emitted") == []
    emitted = await logs.wait("counter_emitted", timeout=5)
    assert emitted["next"] == 2


async def test_failures_are_logged_once_and_recovery_once(supervise: Any, logs: LogWatch) -> None:
    """Three failing runs give one job_failing, then one job_recovered; each is counted."""
    supervisor = await supervise({"counter": {"fail_runs": 3, "every_s": 0.05}})
    failing = await logs.wait("job_failing", timeout=5)
    assert failing["source"] == "counter" and failing["job"] == "count"
    assert failing["error"] == "counter source told to fail"
    await logs.wait("job_recovered", timeout=5)
    assert len(logs.named("job_failing")) == 1
    assert len(logs.named("job_still_failing")) == 2
    assert supervisor._pipeline.metrics.component("counter")["errors"] == 3
