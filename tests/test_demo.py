"""`chargeflux demo` as a user runs it: a subprocess in an empty directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from daemon.registry import SOURCES

EXPECTED = {
    "enedis": ["enedis_load_curve", "enedis_daily", "enedis_max_power"],
    "bluecurrent": ["bluecurrent_status", "bluecurrent_grid"],
    "qualicharge": ["charging_session", "qualicharge_status"],
    "econnect": ["econnect_station"],
}


def _chargeflux(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_demo_runs_every_source_and_reports_what_arrived(tmp_path: Path) -> None:
    """The demo exits 0, simulates every registered source, and its data can be queried."""
    result = _chargeflux("demo", "--seconds", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout
    assert "chargeflux demo: completed" in summary
    for source in SOURCES:
        assert source in summary.split("sources simulated:")[1].splitlines()[0]
    counts = {}
    for line in summary.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    for source, measurements in EXPECTED.items():
        for measurement in measurements:
            assert counts.get(measurement, 0) > 0, f"{source}: no {measurement} in\n{summary}"
    params = tmp_path / "chargeflux-demo" / "params.json"
    assert json.loads(params.read_text())["sink"] == {"type": "embedded"}
    query = _chargeflux(
        "query",
        "econnect_station",
        "--config",
        str(params),
        "--format",
        "json",
        "--limit",
        "5",
        cwd=tmp_path,
    )
    assert query.returncode == 0, query.stderr
    rows = [json.loads(line) for line in query.stdout.splitlines()]
    assert len(rows) == 5 and all(row["fields"]["count"] == 1 for row in rows)
