"""The fleet report: the spreadsheet of the eConnect "Getting Insight" script, from stations.

Sheets (the seed's names, so existing workbooks keep working):

- `values`: one row per station (id, modelInfo, installDate, type, state);
- `modelInfo_count`, `installDate_count`, `type_count`, `state_count`: pandas
  `value_counts()` of each column, as the seed computes them (unreadable install dates are
  empty and not counted as a date, exactly like the seed's `errors="coerce"`);
- `Status Pivot`: stations per model (rows) and state (columns). Unlike the seed, which counts
  the non-empty install dates, it counts every station: a planned station without an install
  date is still a planned station;
- `summary`: poll time, pages, stations, bad records, unreadable install dates;
- `bad_records`: the skipped records and the stations kept with an unreadable install date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from collectors.econnect.snapshot import Snapshot

__all__ = [
    "COLUMNS",
    "SHEETS",
    "FleetReport",
    "build_report",
    "default_report_name",
    "write_report",
]

COLUMNS = ("modelInfo", "installDate", "type", "state")
SHEETS = (
    "values",
    *(f"{column}_count" for column in COLUMNS),
    "Status Pivot",
    "summary",
    "bad_records",
)


@dataclass(frozen=True)
class FleetReport:
    """The report's tables, ready to be written or inspected."""

    values: pd.DataFrame
    counts: dict[str, pd.DataFrame]
    pivot: pd.DataFrame
    summary: pd.DataFrame
    bad_records: pd.DataFrame


def build_report(snapshot: Snapshot) -> FleetReport:
    """Every table of the spreadsheet, computed from one snapshot."""
    parsed = snapshot.parsed
    values = pd.DataFrame(
        {
            "id": [station.id for station in parsed.stations],
            "modelInfo": [station.model_info for station in parsed.stations],
            "installDate": pd.Series(
                [station.install_date for station in parsed.stations], dtype="datetime64[ns]"
            ),
            "type": [station.type for station in parsed.stations],
            "state": [station.state for station in parsed.stations],
        },
        columns=["id", *COLUMNS],
    )
    counts = {
        column: values[column].value_counts().transpose().to_frame(name="count")
        for column in COLUMNS
    }
    pivot = (
        values.pivot_table(index="modelInfo", columns="state", values="id", aggfunc="count")
        .fillna(0)
        .astype("int64")
    )
    missing_dates = sum(not station.install_date_text.strip() for station in parsed.stations)
    summary = pd.DataFrame(
        [
            ("business partner", snapshot.business_partner),
            ("polled at (UTC)", snapshot.polled_at.isoformat()),
            ("pages", snapshot.pages),
            ("stations", len(parsed.stations)),
            ("bad records (skipped)", len(parsed.bad)),
            ("unreadable install dates (kept, date empty)", len(parsed.date_problems)),
            ("missing install dates", missing_dates),
        ],
        columns=["item", "value"],
    )
    rows = [
        (bad.page, bad.position, bad.station, bad.problem, "skipped", bad.record)
        for bad in parsed.bad
    ]
    rows += [
        (None, None, s.id, f"installDate: unreadable {s.install_date_text!r}", "kept", "")
        for s in parsed.date_problems
    ]
    bad_records = pd.DataFrame(
        rows, columns=["page", "position", "station", "problem", "action", "record"]
    ).astype({"page": "Int64", "position": "Int64"})
    return FleetReport(values, counts, pivot, summary, bad_records)


def write_report(report: FleetReport, path: Path) -> Path:
    """Write the workbook (openpyxl) to `path`, replacing it; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.xlsx'}")
    with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
        report.values.to_excel(writer, sheet_name="values")
        for column, count in report.counts.items():
            count.to_excel(writer, sheet_name=f"{column}_count")
        report.pivot.to_excel(writer, sheet_name="Status Pivot")
        report.summary.to_excel(writer, sheet_name="summary", index=False)
        report.bad_records.to_excel(writer, sheet_name="bad_records", index=False)
    tmp.replace(path)
    return path


def default_report_name(polled_at: datetime) -> str:
    """`econnect-stations-YYYY-MM-DD.xlsx` for a poll time."""
    return f"econnect-stations-{polled_at.date().isoformat()}.xlsx"
