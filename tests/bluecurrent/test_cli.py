"""`chargeflux bluecurrent ...`: argument wiring and commands against the simulator."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.bluecurrent.cli import add_cli, main, run_command
from tests.bluecurrent.support import Engine, config_for


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="chargeflux")
    add_cli(top.add_subparsers(dest="command"))
    return top


def test_subcommands_are_wired_with_a_handler() -> None:
    """Every subcommand parses and carries the handler the CLI calls."""
    args = parser().parse_args(["bluecurrent", "transactions", "BCU1", "--all"])
    assert args.handler is main and args.evse_id == "BCU1" and args.all
    assert parser().parse_args(["bluecurrent", "charge-points"]).bluecurrent_command == (
        "charge-points"
    )
    with pytest.raises(SystemExit):
        parser().parse_args(["bluecurrent", "status"])


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["login"], lambda out: out["logged_in"] and out["customer_id"] == "1234567"),
        (["charge-points"], lambda out: [p["evse_id"] for p in out] == ["BCU100000"]),
        (["status", "BCU100000"], lambda out: "power_kw" in out["point_fields"]),
        (["rest-status", "BCU100000"], lambda out: out["evse_id"] == "BCU100000"),
        (["settings", "BCU100000"], lambda out: out["evse_id"] == "BCU100000"),
        (["grid", "BCU100000"], lambda out: out["id"] == "GRID-BCU100000"),
        (["account"], lambda out: out["email"] == "ops@example.org"),
        (["charge-cards"], lambda out: out[0]["uid"] == "A1B2C3D4E5F6"),
        (["sustainability"], lambda out: out["trees"] == 3),
        (["contracts"], lambda out: out[0]["subscription_type"] == "BASIS"),
        (["grids"], lambda out: out[0]["id"] == "GRID-BCU100000"),
        (["transactions", "BCU100000"], lambda out: len(out["transactions"]) == 25),
        (["transactions", "BCU100000", "--all"], lambda out: len(out) == 31),
    ],
)
async def test_commands_print_what_the_api_answers(
    engine: Engine, simulator: Any, argv: list[str], check: Any
) -> None:
    """Each command returns JSON-ready data from the simulator."""
    async with simulator(charge_points=1) as sim:
        args = parser().parse_args(["bluecurrent", *argv])
        out = await run_command(config_for(sim), args, engine.ctx.http)
    assert check(json.loads(json.dumps(out, default=str)))


async def test_main_reads_the_config_file_and_prints_json(
    simulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The handler loads sources.bluecurrent from --config and prints JSON, exit code 0."""
    async with simulator(charge_points=2) as sim:
        config = tmp_path / "params.json"
        block = {"api_token": {"env": "BC_TEST_TOKEN"}, "ws_url": sim.ws_url}
        config.write_text(json.dumps({"sources": {"bluecurrent": {**block}}}))
        args = parser().parse_args(["bluecurrent", "--config", str(config), "charge-points"])
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("BC_TEST_TOKEN", sim.options.api_token)
            code = await asyncio.to_thread(args.handler, args)
    assert code == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("[\n") :])  # after any log lines
    assert [p["evse_id"] for p in printed] == ["BCU100000", "BCU100001"]
