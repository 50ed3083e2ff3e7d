"""`chargeflux demo`: the whole daemon against built-in simulators of every source.

Each source's plugin starts its simulator on a loopback port and hands back a config block
aimed at it; the daemon then runs every job once (backfills included), lets push sources
stream for a few seconds, drains into the embedded store (or the InfluxDB of `--config`),
and prints what arrived: points per measurement, sessions accepted and excluded, anomalies
per rule, and where the data is.
"""

from __future__ import annotations

import shutil
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from daemon.collector import DemoEnv
from daemon.config import (
    EmbeddedSinkConfig,
    find_config,
    installed_plugins,
    load_config,
    parse_config,
)
from daemon.metrics import Counters
from daemon.runtime import Daemon
from daemon.sinks import EmbeddedStore, build_sink

__all__ = ["run_demo"]


async def _summarise(config: Any, sources: list[str], code: int, state_dir: Path) -> str:
    sink = build_sink(config.sink, state_dir, Counters("demo"))
    await sink.open()
    counts: dict[str, int] = {}
    anomalies: Counter[str] = Counter()
    sessions: Counter[str] = Counter()
    readable = True
    try:
        if isinstance(sink, EmbeddedStore):
            counts = await sink.counts()
        else:
            for name in _MEASUREMENTS:
                counts[name] = len(await sink.query(name))
        anomalies.update(
            f"{p.tags.get('source', '?')}/{p.tags.get('rule', '?')}"
            for p in await sink.query("anomaly")
        )
        sessions.update(
            "accepted" if p.fields.get("accepted") else "excluded"
            for p in await sink.query("charging_session")
        )
    except NotImplementedError:  # the 2.x API sink writes only: no counts to show
        readable = False
    finally:
        await sink.close()
    lines = [
        "",
        f"chargeflux demo: {'completed' if code == 0 else 'completed with errors'}",
        f"  sources simulated: {', '.join(sources) or 'none'}",
        "  points per measurement:"
        if readable
        else f"  points per measurement: not readable through {config.sink.type} (use Flux)",
        *(f"    {name:<22} {count:>8}" for name, count in sorted(counts.items()) if count),
    ]
    if sessions:
        lines.append(
            f"  charging sessions: {sessions['accepted']} accepted, {sessions['excluded']} excluded"
        )
    if anomalies:
        lines.append("  anomalies per rule:")
        lines += [f"    {rule:<22} {count:>8}" for rule, count in sorted(anomalies.items())]
    if isinstance(config.sink, EmbeddedSinkConfig):
        where = config.sink.path or state_dir / "points.db"
        lines += [
            f"  data: embedded store {where}",
            f"  try:  chargeflux query enedis_load_curve --config {state_dir.parent}/params.json",
        ]
    else:
        lines.append(f"  data: {config.sink.type} at {config.sink.url}")
    return "\n".join(lines)


_MEASUREMENTS = (
    "enedis_load_curve",
    "enedis_daily",
    "enedis_max_power",
    "bluecurrent_status",
    "bluecurrent_grid",
    "charging_session",
    "qualicharge_status",
    "econnect_station",
    "anomaly",
    "chargeflux_internal",
)


async def run_demo(workdir: Path, seconds: float, config_path: Path | None) -> int:
    """Run the demo in `workdir` (state wiped first); returns the exit code."""
    workdir = Path.cwd() / workdir if not workdir.is_absolute() else workdir
    state_dir = workdir / "state"
    shutil.rmtree(state_dir, ignore_errors=True)
    user_config = load_config(config_path) if find_config(config_path) else None
    sink = user_config.sink.model_dump(mode="python") if user_config else {"type": "embedded"}
    if user_config and hasattr(user_config.sink, "password") and user_config.sink.password:
        sink["password"] = user_config.sink.password
    if user_config and hasattr(user_config.sink, "token"):
        sink["token"] = user_config.sink.token
    async with aiohttp.ClientSession() as http, AsyncExitStack() as stack:
        blocks: dict[str, Any] = {}
        plugins, broken = installed_plugins()
        for plugin in plugins:
            if plugin.demo is None:
                continue
            env = DemoEnv(workdir=workdir / plugin.name, http=http)
            env.workdir.mkdir(parents=True, exist_ok=True)
            blocks[plugin.name] = await stack.enter_async_context(plugin.demo(env))
        raw = {
            "state_dir": str(state_dir),
            "sink": sink,
            "outbox": {"flush_interval_s": 0.2, "drain_timeout_s": 60},
            "sources": blocks,
        }
        config = parse_config(raw, "<demo>")
        _write_params(workdir, raw)
        code = await Daemon(config).run_once(stream_for=seconds)
    print(await _summarise(config, sorted(blocks), code, state_dir))
    for name, reason in sorted(broken.items()):
        print(f"  source {name} not loaded: {reason}")
    return code


def _write_params(workdir: Path, raw: dict[str, Any]) -> None:
    """Keep a params.json next to the demo data so `chargeflux query` finds the store."""
    import json

    keep = {"state_dir": raw["state_dir"], "sink": {"type": "embedded"}}
    if raw["sink"].get("type") == "embedded":
        (workdir / "params.json").write_text(json.dumps(keep, indent=2), encoding="utf-8")
