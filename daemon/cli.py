"""The `chargeflux` command line.

    chargeflux run [--config PATH] [--once]
    chargeflux check-config [--config PATH]
    chargeflux demo [--seconds N] [--workdir DIR] [--config PATH]
    chargeflux query MEASUREMENT [--since WHEN] [--limit N] [--format table|json]
    chargeflux dead-letters [--limit N]

Sources add their own subcommands through their plugin's `add_cli` (setup and
troubleshooting commands). Exit codes: 0 success, 1 a job or the drain failed, 2 bad usage or
invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon import __version__
from daemon.config import (
    Config,
    EmbeddedSinkConfig,
    installed_plugins,
    load_config,
    masked,
    secret_values,
)
from daemon.errors import ChargefluxError, ConfigError
from daemon.logging import configure_logging
from daemon.points import Point, to_ns

__all__ = ["main", "secrets_of"]


def secrets_of(config: Config) -> list[str]:
    """Every resolved secret in the config, for the log redactor."""
    return secret_values(config)


def apply_logging(config: Config) -> None:
    """Set up logging from a config: its level and format, and its secrets redacted."""
    configure_logging(config.log.level, config.log.format, secrets_of(config))


def load(args: argparse.Namespace) -> Config:
    """Load the config named by --config and set up logging from it."""
    config = load_config(args.config)
    apply_logging(config)
    return config


def _cmd_run(args: argparse.Namespace) -> int:
    from daemon.runtime import Daemon

    config = load(args)
    # a reload (SIGHUP) applies the new log level and redacts the new secrets too
    daemon = Daemon(config, config_path=args.config, on_config=apply_logging)
    return asyncio.run(daemon.run_once() if args.once else daemon.run())


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"# {config.source or 'no file found: defaults'}")
    print(json.dumps(masked(config), indent=2, sort_keys=False))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    configure_logging("warning" if not args.verbose else "info", "console")
    return asyncio.run(run_demo(args.workdir, args.seconds, args.config))


def parse_since(text: str | None, now: datetime | None = None) -> int | None:
    """`--since`: an ISO date/datetime, or a duration like 90m, 24h, 7d."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        moment = (now or datetime.now(UTC)) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
        return to_ns(moment)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: use an ISO date or a duration (90m, 24h, 7d)"
        ) from None
    return to_ns(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _format_point(point: Point) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted(point.tags.items()))
    fields = " ".join(f"{k}={v!r}" for k, v in point.fields.items())
    return f"{point.time.isoformat()}  {tags}  {fields}"


def _cmd_query(args: argparse.Namespace) -> int:
    from daemon.sinks import build_sink

    config = load(args)
    since = parse_since(args.since)
    if isinstance(config.sink, EmbeddedSinkConfig):
        store = config.sink.path or Path(config.state_dir) / "points.db"
        if not store.is_file():  # do not create an empty store for a wrong --config
            raise ChargefluxError(f"no embedded store at {store} (check --config / state_dir)")

    async def query() -> list[Point]:
        from daemon.metrics import Counters

        sink = build_sink(config.sink, Path(config.state_dir), Counters("cli"))
        try:
            return await sink.query(args.measurement, since, args.limit)
        except NotImplementedError as exc:
            raise ChargefluxError(f"the {sink.name} sink cannot be queried here: {exc}") from None
        finally:
            await sink.close()

    points = asyncio.run(query())
    for point in points:
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "time": point.time.isoformat(),
                        "tags": dict(point.tags),
                        "fields": dict(point.fields),
                    }
                )
            )
        else:
            print(_format_point(point))
    print(f"# {len(points)} point(s) of {args.measurement}", file=sys.stderr)
    return 0


def _cmd_dead_letters(args: argparse.Namespace) -> int:
    from daemon.state import StateDB

    config = load(args)
    path = Path(config.state_dir) / "state.db"
    if not path.is_file():  # do not create an empty state file for a wrong --config
        raise ChargefluxError(f"no state database at {path} (check --config / state_dir)")
    db = StateDB(path)
    try:
        rows = db.run_sync(
            lambda conn: (
                conn.execute(
                    "SELECT datetime(created_at, 'unixepoch'), reason, line FROM dead_letter "
                    "ORDER BY id DESC LIMIT ?",
                    (args.limit,),
                ).fetchall()
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'dead_letter'").fetchone()
                else []
            )
        )
    finally:
        db.close()
    for created, reason, line in rows:
        print(f"{created}  {reason}\n    {line}")
    print(f"# {len(rows)} dead letter(s)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargeflux", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"chargeflux {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: object) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument(
            "--config",
            type=Path,
            default=None,
            help="params.json (default ./params.json, then /etc/chargeflux/)",
        )
        cmd.set_defaults(handler=handler)
        return cmd

    run = command("run", "run the daemon", _cmd_run)
    run.add_argument("--once", action="store_true", help="run every job once, drain, exit")
    command(
        "check-config", "validate and print the effective config, secrets masked", _cmd_check_config
    )
    demo = command("demo", "run every source against built-in simulators and summarise", _cmd_demo)
    demo.add_argument(
        "--seconds", type=float, default=5.0, help="how long push sources stream (default 5)"
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=Path("chargeflux-demo"),
        help="where the demo keeps its state and data (default ./chargeflux-demo)",
    )
    demo.add_argument("--verbose", action="store_true", help="show the daemon's logs")
    query = command("query", "print stored points of one measurement", _cmd_query)
    query.add_argument("measurement")
    query.add_argument("--since", help="ISO date/time or a duration such as 24h, 7d")
    query.add_argument("--limit", type=int, default=50, help="newest N points (default 50)")
    query.add_argument("--format", choices=("table", "json"), default="table")
    dead = command(
        "dead-letters", "list points the server refused, with its reasons", _cmd_dead_letters
    )
    dead.add_argument("--limit", type=int, default=50)
    for source in installed_plugins()[0]:
        if source.add_cli is not None:
            source.add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"chargeflux: {exc}", file=sys.stderr)
        return 2
    except ChargefluxError as exc:
        print(f"chargeflux: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
