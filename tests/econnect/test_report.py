"""The fleet report against the seed script's pandas steps, and the workbook it writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import pandas as pd

from collectors.econnect.client import MasterdataClient
from collectors.econnect.models import parse_install_date, read_stations
from collectors.econnect.report import SHEETS, build_report, write_report
from collectors.econnect.simulator import make_stations
from collectors.econnect.snapshot import Snapshot
from tests.econnect.conftest import SimulatorFactory, config_for

COLS = ["modelInfo", "installDate", "type", "state"]


def seed_calculate(entries: list[dict[str, Any]]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The seed's `extract_data` + `calculate_values`, step by step, as the reference."""
    df = pd.DataFrame([{col: entry.get(col, "") for col in COLS} for entry in entries])
    df["installDate"] = pd.to_datetime(df["installDate"], format="ISO8601", errors="coerce")
    counts = {col: df[col].value_counts().transpose().to_frame(name="count") for col in COLS}
    pivot = df.pivot_table(
        index="modelInfo", columns=["state"], values="installDate", aggfunc="count"
    ).fillna(0)
    return counts, pivot


def _as_dict(frame: pd.DataFrame) -> dict[Any, int]:
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        index = index.tz_convert(None)
    return {key: int(value) for key, value in zip(index, frame["count"], strict=True)}


def _snapshot(raw: list[Any]) -> Snapshot:
    parsed = read_stations([(0, raw)])
    return Snapshot(datetime(2025, 3, 3, 6, 17, tzinfo=UTC), "100042", 1, parsed)


async def test_counts_and_pivot_equal_the_seed_on_simulator_stations(
    simulator_factory: SimulatorFactory, http: aiohttp.ClientSession
) -> None:
    """On a pulled fleet whose dates all parse, counts and pivot equal the seed's output."""
    async with simulator_factory(stations=make_stations(260, seed=3, undated=0)) as sim:
        pull = await MasterdataClient(http, config_for(sim)).pull()
    report = build_report(Snapshot(datetime.now(UTC), "100042", pull.pages, pull.parsed))
    seed_counts, seed_pivot = seed_calculate(sim.stations)
    for col in COLS:
        assert _as_dict(report.counts[col]) == _as_dict(seed_counts[col]), col
        assert list(report.counts[col]["count"]) == list(seed_counts[col]["count"]), col
    pd.testing.assert_frame_equal(report.pivot, seed_pivot.astype("int64"), check_names=False)


def test_undated_stations_count_in_the_pivot_where_the_seed_drops_them() -> None:
    """Counts match the seed; the pivot adds exactly the stations without a readable date."""
    raw = make_stations(300, seed=11, undated=6)
    report = build_report(_snapshot(raw))
    seed_counts, seed_pivot = seed_calculate(raw)
    for col in COLS:
        assert _as_dict(report.counts[col]) == _as_dict(seed_counts[col]), col
    undated = pd.DataFrame([s for s in raw if parse_install_date(s.get("installDate", "")) is None])
    assert len(undated) == 6
    extra = undated.groupby(["modelInfo", "state"]).size()
    difference = (report.pivot - seed_pivot.reindex_like(report.pivot).fillna(0)).stack()
    assert {key: int(v) for key, v in difference.items() if v} == extra.to_dict()
    assert int(report.pivot.to_numpy().sum()) == 300


def test_mixed_offsets_are_read_where_the_seed_fails() -> None:
    """Install dates with different UTC offsets are normalised to UTC, not an error."""
    raw = [
        {"id": "A", "modelInfo": "M", "installDate": "2021-03-04T08:00:00Z", "state": "S"},
        {"id": "B", "modelInfo": "M", "installDate": "2021-03-04T10:00:00+02:00", "state": "S"},
        {"id": "C", "modelInfo": "M", "installDate": "2021-03-05", "state": "S"},
    ]
    report = build_report(_snapshot(raw))
    assert _as_dict(report.counts["installDate"]) == {
        pd.Timestamp("2021-03-04 08:00"): 2,
        pd.Timestamp("2021-03-05"): 1,
    }


def test_workbook_has_the_seed_sheets_and_values(tmp_path: Path) -> None:
    """The written workbook opens with openpyxl and holds the expected sheets and numbers."""
    raw: list[Any] = make_stations(150, seed=5, undated=3)
    raw.insert(10, {"id": "X-1", "modelInfo": 7, "state": "PLANNED"})
    report = build_report(_snapshot(raw))
    path = write_report(report, tmp_path / "out" / "fleet.xlsx")

    book = openpyxl.load_workbook(path, read_only=True)
    assert tuple(book.sheetnames) == SHEETS
    values = list(book["values"].iter_rows(values_only=True))
    assert values[0] == (None, "id", *COLS)
    assert len(values) == 1 + 150
    assert values[1][1] == raw[0]["id"] and values[1][2] == raw[0]["modelInfo"]

    pivot_rows = list(book["Status Pivot"].iter_rows(values_only=True))
    header = pivot_rows[0]
    cells = {
        (row[0], header[col]): row[col]
        for row in pivot_rows[1:]
        if row[0] not in (None, "modelInfo")
        for col in range(1, len(header))
    }
    expected = pd.DataFrame([s for s in raw if isinstance(s.get("modelInfo"), str)])
    expected = expected.groupby(["modelInfo", "state"]).size()
    assert {key: v for key, v in cells.items() if v} == expected.to_dict()

    state_rows = dict(list(book["state_count"].iter_rows(values_only=True))[1:])
    assert state_rows == expected.groupby(level="state").sum().to_dict()

    bad = list(book["bad_records"].iter_rows(values_only=True))
    assert bad[0] == ("page", "position", "station", "problem", "action", "record")
    assert [(row[2], row[4]) for row in bad[1:]] == [("X-1", "skipped"), (raw[-1]["id"], "kept")]
    assert "modelInfo" in bad[1][3]
    summary = dict(list(book["summary"].iter_rows(values_only=True))[1:])
    assert summary["stations"] == 150
    assert summary["bad records (skipped)"] == 1
    assert summary["unreadable install dates (kept, date empty)"] == 1


def test_empty_fleet_still_writes_a_workbook(tmp_path: Path) -> None:
    """No stations gives a workbook with every sheet, not a crash."""
    path = write_report(build_report(_snapshot([])), tmp_path / "empty.xlsx")
    assert tuple(openpyxl.load_workbook(path).sheetnames) == SHEETS
