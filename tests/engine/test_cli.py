"""CLI commands that read data back (query, dead-letters) and the demo's summary per sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon import demo
from daemon.cli import main
from daemon.collector import DemoEnv
from tests.engine import counter_source
from tests.helpers import run_once


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """main() configures logging onto the captured stderr: undo it after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def write_params(path: Path, state_dir: Path, sink: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"state_dir": str(state_dir), "sink": sink}), encoding="utf-8")
    return path


def test_query_without_a_store_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """query and dead-letters on a state dir holding nothing exit 1 without creating files."""
    params = write_params(tmp_path / "params.json", tmp_path / "state", {"type": "embedded"})
    assert main(["query", "counter", "--config", str(params)]) == 1
    assert "no embedded store at" in capsys.readouterr().err
    assert main(["dead-letters", "--config", str(params)]) == 1
    assert "no state database at" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_query_reads_back_from_influxdb(
    state_dir: Path, influxdb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """chargeflux query with an InfluxDB 1.x sink prints the newest points as JSON."""
    code = asyncio.run(
        run_once(state_dir, {"counter": {"per_run": 7}}, sink=influxdb.sink_config())
    )
    assert code == 0
    params = write_params(state_dir.parent / "params.json", state_dir, influxdb.sink_config())
    capsys.readouterr()
    code = main(["query", "counter", "--config", str(params), "--format", "json", "--limit", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["fields"]["n"] for row in rows] == [4, 5, 6]
    assert rows[0]["tags"] == {"source": "test"}
    assert "# 3 point(s) of counter" in err


def test_query_on_a_write_only_sink_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 2.x API sink cannot be queried: exit 1 with a message, not a traceback."""
    sink = {
        "type": "influxdb_v2",
        "url": "http://127.0.0.1:9",
        "token": "t",
        "org": "o",
        "bucket": "b",
    }
    params = write_params(tmp_path / "params.json", tmp_path / "state", sink)
    assert main(["query", "counter", "--config", str(params)]) == 1
    assert "the influxdb_v2 sink cannot be queried here" in capsys.readouterr().err


@contextlib.asynccontextmanager
async def counter_demo(env: DemoEnv) -> AsyncIterator[dict[str, Any]]:
    yield {"per_run": 12}


@pytest.fixture
def counter_only_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo over the counter source alone, with one source that fails to load."""
    plugin = dataclasses.replace(counter_source.PLUGIN, demo=counter_demo)
    broken = {"halfway": "AttributeError: module 'collectors.halfway' has no attribute 'PLUGIN'"}
    monkeypatch.setattr(demo, "installed_plugins", lambda: ([plugin], broken))


async def test_demo_summarises_an_influxdb_sink(
    tmp_path: Path, influxdb: Any, counter_only_demo: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """With an InfluxDB 1.x sink configured, the demo writes there and counts what arrived."""
    params = write_params(tmp_path / "params.json", tmp_path / "unused", influxdb.sink_config())
    assert await demo.run_demo(tmp_path / "demo", 0, params) == 0
    out = capsys.readouterr().out
    assert "chargeflux demo: completed" in out
    assert f"data: influxdb at {influxdb.url}" in out
    internal = next(line for line in out.splitlines() if "chargeflux_internal" in line)
    assert int(internal.split()[-1]) >= 1
    assert "source halfway not loaded: AttributeError" in out
    assert len(influxdb.query('SELECT "n" FROM "counter"')) == 12


async def test_demo_summarises_a_write_only_sink(
    tmp_path: Path,
    victoriametrics: Any,
    counter_only_demo: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the 2.x API sink the demo completes and says where the data went."""
    sink = {
        "type": "influxdb_v2",
        "url": victoriametrics.url,
        "token": "t",
        "org": "o",
        "bucket": "b",
    }
    params = write_params(tmp_path / "params.json", tmp_path / "unused", sink)
    assert await demo.run_demo(tmp_path / "demo", 0, params) == 0
    out = capsys.readouterr().out
    assert "points per measurement: not readable through influxdb_v2" in out
    assert f"data: influxdb_v2 at {victoriametrics.url}" in out
