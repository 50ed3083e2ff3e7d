"""`chargeflux report stations`: from the stored snapshot, or a live pull."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from collectors.econnect.cli import add_cli, report_stations
from collectors.econnect.models import read_stations
from collectors.econnect.report import SHEETS
from collectors.econnect.simulator import make_stations
from collectors.econnect.snapshot import Snapshot, save_snapshot, snapshot_path
from daemon.errors import AuthError
from tests.econnect.conftest import SimulatorFactory


def _params(tmp_path: Path, econnect: dict[str, Any] | None = None) -> Path:
    raw: dict[str, Any] = {"state_dir": str(tmp_path / "state")}
    if econnect is not None:
        raw["sources"] = {"econnect": econnect}
    path = tmp_path / "params.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def _store_snapshot(tmp_path: Path, count: int = 40) -> None:
    parsed = read_stations([(0, make_stations(count, undated=2))])
    polled_at = datetime(2025, 3, 3, 5, 17, tzinfo=UTC)
    save_snapshot(snapshot_path(tmp_path / "state"), Snapshot(polled_at, "100042", 1, parsed))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargeflux")
    add_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def test_report_from_snapshot_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command writes the workbook from the snapshot and prints a one-line summary."""
    _store_snapshot(tmp_path)
    out = tmp_path / "reports" / "fleet.xlsx"
    args = _parser().parse_args(
        ["report", "stations", "--config", str(_params(tmp_path)), "--out", str(out)]
    )
    assert args.handler(args) == 0
    assert tuple(openpyxl.load_workbook(out).sheetnames) == SHEETS
    printed = capsys.readouterr().out
    assert "40 stations" in printed and "1 unreadable install dates" in printed


def test_default_output_name_is_dated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --out the workbook is named after the poll date, in the current directory."""
    _store_snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(["report", "stations", "--config", str(_params(tmp_path))])
    assert args.handler(args) == 0
    assert (tmp_path / "econnect-stations-2025-03-03.xlsx").is_file()


def test_missing_snapshot_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any poll the command exits 1 and says the daemon has not polled yet."""
    args = _parser().parse_args(["report", "stations", "--config", str(_params(tmp_path))])
    assert args.handler(args) == 1
    assert "has not polled eConnect yet" in capsys.readouterr().err


def test_report_shares_an_existing_report_command() -> None:
    """`stations` joins a `report` command another part of the CLI already added."""
    parser = argparse.ArgumentParser(prog="chargeflux")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report")
    report.add_subparsers(dest="kind", required=True).add_parser("monthly")
    add_cli(sub)
    assert parser.parse_args(["report", "stations", "--live"]).live is True
    assert parser.parse_args(["report", "monthly"]).kind == "monthly"


async def test_live_pull_builds_the_report(
    tmp_path: Path, simulator_factory: SimulatorFactory
) -> None:
    """--live pulls every page now and leaves the stored snapshot alone."""
    async with simulator_factory(stations=make_stations(130), bad_records=2) as sim:
        params = _params(
            tmp_path,
            {
                "base_url": sim.base_url,
                "business_partner": sim.business_partner,
                "username": sim.username,
                "password": sim.password,
            },
        )
        path, snapshot = await report_stations(params, out=tmp_path / "live.xlsx", live=True)
    assert dict(sim.hits) == {0: 1, 1: 1, 2: 1}
    assert len(snapshot.parsed.stations) == 130 and len(snapshot.parsed.bad) == 2
    assert path.is_file() and not snapshot_path(tmp_path / "state").exists()


async def test_live_pull_with_wrong_password_does_not_leak_it(
    tmp_path: Path, simulator_factory: SimulatorFactory
) -> None:
    """A refused live pull raises AuthError whose text does not contain the password."""
    async with simulator_factory() as sim:
        params = _params(
            tmp_path,
            {
                "base_url": sim.base_url,
                "business_partner": sim.business_partner,
                "username": sim.username,
                "password": "wrong-horse-battery",
                "retry_max_wait_s": 0,
            },
        )
        with pytest.raises(AuthError) as caught:
            await report_stations(params, out=tmp_path / "live.xlsx", live=True)
    assert "wrong-horse-battery" not in str(caught.value)
