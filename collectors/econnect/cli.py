"""`chargeflux report stations`: the fleet spreadsheet from the latest snapshot or a live pull.

    chargeflux report stations [--out FILE.xlsx] [--live] [--config params.json]

Without `--live` it reads the snapshot the daemon stored at its last poll (no API call);
with `--live` it pulls the stations now with the `sources.econnect` settings (nothing is
written to the outbox, the snapshot is left as it is). Exit codes: 0 written, 1 error (no
snapshot, API failure), 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from collectors.econnect.client import MasterdataClient
from collectors.econnect.config import EconnectConfig
from collectors.econnect.report import build_report, default_report_name, write_report
from collectors.econnect.snapshot import Snapshot, load_snapshot, snapshot_path
from daemon.errors import ChargefluxError, ConfigError

__all__ = ["add_cli", "report_stations"]


def _subcommands(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """The parser's subcommand group, created if it has none yet."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=dest, metavar="WHAT", required=True)


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add `report stations` (sharing `report` with other sources if it already exists)."""
    report = subparsers.choices.get("report")
    if report is None:
        report = subparsers.add_parser("report", help="build reports")
    stations = _subcommands(report, "report_kind").add_parser(
        "stations",
        help="eConnect fleet spreadsheet: counts per model/state/type and a model x state pivot",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    stations.add_argument("--out", type=Path, help="the .xlsx file (default: dated name)")
    stations.add_argument("--live", action="store_true", help="pull from the API now")
    stations.add_argument(
        "--config",
        type=Path,
        default=None,
        help="params.json (default ./params.json, then /etc/chargeflux/)",
    )
    stations.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    try:
        path, snapshot = asyncio.run(
            report_stations(getattr(args, "config", None), out=args.out, live=args.live)
        )
    except OSError as exc:
        print(f"chargeflux: cannot write the report: {exc}", file=sys.stderr)
        return 1
    except ConfigError:
        raise
    except ChargefluxError as exc:
        print(f"chargeflux: error: {exc}", file=sys.stderr)
        return 1
    parsed = snapshot.parsed
    print(
        f"{path}: {len(parsed.stations)} stations, {len(parsed.bad)} bad records, "
        f"{len(parsed.date_problems)} unreadable install dates "
        f"(polled {snapshot.polled_at.isoformat()})"
    )
    return 0


def _source_config(config: Any) -> EconnectConfig:
    block = config.sources.get("econnect")
    if block is None:
        raise ConfigError("no sources.econnect block in the configuration (needed for --live)")
    if isinstance(block, EconnectConfig):
        return block
    return EconnectConfig.model_validate(block)


async def report_stations(
    config_path: Path | None, *, out: Path | None = None, live: bool = False
) -> tuple[Path, Snapshot]:
    """Build the spreadsheet; returns where it was written and the snapshot it used."""
    from daemon.config import load_config

    config = load_config(config_path)
    if live:
        econnect = _source_config(config)
        polled_at = datetime.now(UTC).replace(microsecond=0)
        async with aiohttp.ClientSession() as http:
            pull = await MasterdataClient(http, econnect).pull()
        snapshot = Snapshot(polled_at, econnect.business_partner, pull.pages, pull.parsed)
    else:
        path = snapshot_path(Path(config.state_dir))
        if not path.is_file():
            raise ChargefluxError(
                f"no eConnect snapshot at {path}: the daemon has not polled eConnect yet "
                "(or use --live)"
            )
        snapshot = await asyncio.to_thread(load_snapshot, path)
    target = out or Path(default_report_name(snapshot.polled_at))
    await asyncio.to_thread(write_report, build_report(snapshot), target)
    return target, snapshot
