"""`chargeflux bluecurrent ...`: setup and troubleshooting commands, printed as JSON.

    chargeflux bluecurrent login                 validate the API token (customer id)
    chargeflux bluecurrent charge-points         the account's charge points
    chargeflux bluecurrent status EVSE           live status (websocket) and its point fields
    chargeflux bluecurrent rest-status EVSE      status from the REST API
    chargeflux bluecurrent settings EVSE         charge point settings
    chargeflux bluecurrent grid EVSE             grid status of a charge point
    chargeflux bluecurrent account | charge-cards | sustainability | contracts | grids
    chargeflux bluecurrent transactions EVSE [--page N | --all]

The `sources.bluecurrent` block is read from `--config` (default ./params.json, then
/etc/chargeflux/params.json); without one, `CHARGEFLUX_BLUECURRENT_API_TOKEN` is used with the
default URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from pydantic import BaseModel

from collectors.bluecurrent.backoff import LoginLimiter, SystemClock
from collectors.bluecurrent.client import Auth, BlueCurrentApi
from collectors.bluecurrent.config import BlueCurrentConfig
from collectors.bluecurrent.mapping import StatusMapper
from collectors.bluecurrent.models import DATA_MESSAGE
from collectors.bluecurrent.rest import RestClient
from daemon.errors import ConfigError
from daemon.metrics import Counters

__all__ = ["add_cli", "load_source_config", "run_command"]

TOKEN_ENV = "CHARGEFLUX_BLUECURRENT_API_TOKEN"

_COMMANDS: dict[str, tuple[str, bool]] = {
    "login": ("validate the API token and print the customer id", False),
    "charge-points": ("list the account's charge points", False),
    "status": ("live status of a charge point (websocket) and its point fields", True),
    "rest-status": ("status of a charge point from the REST API", True),
    "settings": ("settings of a charge point", True),
    "grid": ("grid status of a charge point", True),
    "account": ("account information", False),
    "charge-cards": ("charge cards", False),
    "sustainability": ("trees and CO2 saved by all charge points", False),
    "contracts": ("contracts", False),
    "grids": ("grid connections", False),
    "transactions": ("transactions of a charge point, newest first", True),
}


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add `bluecurrent` and its subcommands; each sets `handler(args) -> exit code`."""
    parser = subparsers.add_parser("bluecurrent", help="BlueCurrent setup and troubleshooting")
    parser.add_argument("--config", type=Path, default=None, help="params.json to read")
    commands = parser.add_subparsers(dest="bluecurrent_command", required=True)
    for name, (text, needs_evse) in _COMMANDS.items():
        command = commands.add_parser(name, help=text)
        if needs_evse:
            command.add_argument("evse_id", help="charge point id, e.g. BCU123456")
        if name == "transactions":
            command.add_argument("--page", type=int, default=1, help="page (from 1)")
            command.add_argument("--all", action="store_true", help="follow every page")
        command.set_defaults(handler=main)


def load_source_config(path: Path | None) -> BlueCurrentConfig:
    """The validated `sources.bluecurrent` block (secrets resolved), or the token from
    `CHARGEFLUX_BLUECURRENT_API_TOKEN` when the config has no such block."""
    from daemon.config import load_config

    config = load_config(path)
    block = config.sources.get("bluecurrent")
    if isinstance(block, BlueCurrentConfig):
        return block
    if os.environ.get(TOKEN_ENV):
        return BlueCurrentConfig.model_validate({"api_token": {"env": TOKEN_ENV}})
    raise ConfigError(f"no sources.bluecurrent block in the configuration and {TOKEN_ENV} unset")


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


async def run_command(
    config: BlueCurrentConfig, args: argparse.Namespace, http: aiohttp.ClientSession
) -> Any:
    """Run one subcommand and return what it prints."""
    clock, counters = SystemClock(), Counters("bluecurrent-cli")
    log = structlog.get_logger("chargeflux.bluecurrent")
    limiter = LoginLimiter(clock, max_logins=config.max_logins, window=config.login_window_s)
    auth = Auth(config.ws_url, config.api_token, clock=clock, limiter=limiter,
                counters=counters, log=log, timeout=config.request_timeout_s)  # fmt: skip
    rest = RestClient(http, config.api_url, auth, counters, timeout=config.request_timeout_s)
    name, evse = args.bluecurrent_command, getattr(args, "evse_id", "")
    if name == "login":
        await auth.ensure()
        return {"customer_id": auth.customer_id, "logged_in": True}
    rest_calls: dict[str, Callable[[], Any]] = {
        "rest-status": lambda: rest.charge_point_status(evse),
        "contracts": rest.contracts,
        "grids": rest.grids,
        "transactions": lambda: (
            rest.all_transactions(evse) if args.all else rest.transactions(evse, page=args.page)
        ),
    }
    if name in rest_calls:
        return _plain(await rest_calls[name]())
    async with BlueCurrentApi(auth, config.ws_url, rest, timeout=config.request_timeout_s) as api:
        if name == "status":
            message = DATA_MESSAGE.validate_python(await api.get_status(evse))
            point = StatusMapper().status_point(message, clock.time_ns())  # type: ignore[arg-type]
            return {"message": message, "point_fields": dict(point.fields)}
        calls: dict[str, Callable[[], Any]] = {
            "charge-points": api.get_charge_points,
            "settings": lambda: api.get_charge_point_settings(evse),
            "grid": lambda: api.get_grid_status(evse),
            "account": api.get_account,
            "charge-cards": api.get_charge_cards,
            "sustainability": api.get_sustainability_status,
        }
        return _plain(await calls[name]())


def main(args: argparse.Namespace) -> int:
    """Handler of every `bluecurrent` subcommand: prints the answer as JSON, returns 0.
    Errors propagate to the CLI (ConfigError: exit 2, other errors: exit 1)."""

    async def go() -> Any:
        config = load_source_config(args.config)
        async with aiohttp.ClientSession() as http:
            return await run_command(config, args, http)

    print(json.dumps(asyncio.run(go()), indent=2, ensure_ascii=False, default=str))
    return 0
