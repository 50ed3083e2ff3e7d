"""The real `chargeflux run` as a child process: signals, reload, systemd notify, JSON logs.

The child registers the test `counter` source and then calls `daemon.cli.main`, exactly what
the console script does. Its stderr is a pipe, so every log line must be one JSON object;
tests wait on parsed log events and on notify datagrams (with timeouts), never on sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BOOT = (
    "import sys\n"
    "from daemon import registry\n"
    "registry.SOURCES['counter'] = 'tests.engine.counter_source'\n"
    "from daemon.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
TIMEOUT = 30.0


class Child:
    """A `chargeflux run` process whose stderr is parsed into log events as it arrives."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.garbage: list[str] = []
        self.terminated = False
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOT, "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._changed:
                try:
                    event = json.loads(line)
                    if not isinstance(event, dict):
                        raise ValueError(line)
                    self.events.append(event)
                except ValueError:
                    self.garbage.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_event(
        self, name: str, where: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> dict[str, Any]:
        """The first log event called `name` matching `where`, waiting up to TIMEOUT."""

        def found() -> dict[str, Any] | None:
            for event in self.events:
                if event.get("event") == name and where(event):
                    return event
            return None

        with self._changed:
            ok = self._changed.wait_for(
                lambda: found() is not None or not self._reader.is_alive(), TIMEOUT
            )
            event = found()
        if not ok or event is None:
            tail = "\n".join(json.dumps(e) for e in self.events[-15:])
            raise AssertionError(f"no {name!r} event; last events:\n{tail}\n{self.garbage[-5:]}")
        return event

    def signal(self, signum: signal.Signals) -> None:
        self.terminated |= signum == signal.SIGTERM
        self.process.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM (unless sent already), the exit code; every stderr line must be JSON."""
        if not self.terminated:
            self.signal(signal.SIGTERM)
        code = self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        assert self.garbage == [], "non-JSON lines on stderr"
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def write_config(path: Path, state_dir: Path, **settings: Any) -> Path:
    raw = {
        "state_dir": str(state_dir),
        "log": {"level": "info"},
        "outbox": {"flush_interval_s": 0.05, "retry_initial_s": 0.05, "retry_max_s": 0.2},
        **settings,
    }
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def state_rows(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state_dir / "state.db") as conn:
        return conn.execute(sql).fetchall()


def checkpoint(state_dir: Path) -> int:
    rows = state_rows(
        state_dir, "SELECT value FROM checkpoints WHERE collector = 'counter' AND key = 'next'"
    )
    return int(rows[0][0])


def influx_numbers(influxdb: Any) -> list[int]:
    return sorted(row["n"] for row in influxdb.query('SELECT "n" FROM "counter"'))


def test_sigterm_drains_and_exits_zero(tmp_path: Path, influxdb: Any, children: list) -> None:
    """SIGTERM (twice) while points are produced: exit 0, outbox empty, each point once."""
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "params.json",
        state,
        sink=influxdb.sink_config(),
        sources={"counter": {"per_run": 200, "every_s": 0.02}},
    )
    child = Child(config)
    children.append(child)
    child.wait_event("daemon_ready")
    child.wait_event("counter_emitted", lambda e: e["next"] >= 1000)
    child.signal(signal.SIGTERM)
    child.wait_event("daemon_stopping")
    child.signal(signal.SIGTERM)  # a second one during the drain must not kill it
    assert child.stop() == 0
    stopped = [e["event"] for e in child.events]
    assert stopped.index("daemon_stopping") < stopped.index("daemon_stopped")
    produced = checkpoint(state)
    assert produced >= 1000
    assert influx_numbers(influxdb) == list(range(produced))
    assert state_rows(state, "SELECT COALESCE(SUM(n), 0) FROM outbox") == [(0,)]


def test_sighup_with_new_config_restarts_collectors_and_keeps_buffer(
    tmp_path: Path, influxdb: Any, children: list
) -> None:
    """Points buffered while the sink is down survive a reload that fixes the sink."""
    state = tmp_path / "state"
    dead_sink = {"type": "influxdb", "url": f"http://127.0.0.1:{free_port()}", "database": "x"}
    config = write_config(
        tmp_path / "params.json", state, sink=dead_sink, sources={"counter": {"per_run": 10}}
    )
    child = Child(config)
    children.append(child)
    child.wait_event("counter_emitted", lambda e: e["next"] == 10)
    child.wait_event("sink_write_failing")
    write_config(config, state, sink=influxdb.sink_config(), sources={"counter": {"per_run": 7}})
    child.signal(signal.SIGHUP)
    child.wait_event("config_reloaded")
    child.wait_event("counter_emitted", lambda e: e["next"] == 17)
    child.wait_event("sink_write_recovered")
    assert child.stop() == 0
    assert influx_numbers(influxdb) == list(range(17))


def test_sighup_with_invalid_config_keeps_running(tmp_path: Path, children: list) -> None:
    """An invalid file on SIGHUP is logged with its position; the daemon carries on."""
    state = tmp_path / "state"
    config = write_config(tmp_path / "params.json", state, sources={"counter": {"per_run": 5}})
    child = Child(config)
    children.append(child)
    child.wait_event("counter_emitted", lambda e: e["next"] == 5)
    config.write_text('{"state_dir": "x",\n  "sources": {', encoding="utf-8")
    child.signal(signal.SIGHUP)
    rejected = child.wait_event("reload_rejected")
    assert str(config) in rejected["error"]
    assert "line 2 column" in rejected["error"]
    assert child.process.poll() is None
    assert not [e for e in child.events if e["event"] == "config_reloaded"]
    assert child.stop() == 0
    assert checkpoint(state) == 5


def test_sigusr1_reports_that_no_export_is_configured(tmp_path: Path, children: list) -> None:
    """SIGUSR1 runs the export hook; without an exporter it logs export_unavailable."""
    config = write_config(tmp_path / "params.json", tmp_path / "state")
    child = Child(config)
    children.append(child)
    child.wait_event("daemon_ready")
    child.signal(signal.SIGUSR1)
    event = child.wait_event("export_unavailable")
    assert event["level"] == "warning"
    assert child.stop() == 0


class NotifySocket:
    """The systemd side of sd_notify: an abstract unix datagram socket collecting states."""

    def __init__(self) -> None:
        self.name = f"@chargeflux-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(TIMEOUT)
        self.states: list[str] = []

    def wait_for(self, prefix: str) -> str:
        """The next state starting with `prefix`, receiving datagrams until it arrives."""
        while True:
            try:
                datagram = self.sock.recv(4096).decode()
            except TimeoutError:
                raise AssertionError(f"no {prefix!r} notification; got {self.states}") from None
            self.states += datagram.split("\n")
            for state in datagram.split("\n"):
                if state.startswith(prefix):
                    return state

    def close(self) -> None:
        self.sock.close()


def test_systemd_notifications(tmp_path: Path, children: list) -> None:
    """READY=1 with a STATUS= line, WATCHDOG=1 pings, RELOADING=1 on SIGHUP, STOPPING=1."""
    notify = NotifySocket()
    try:
        config = write_config(
            tmp_path / "params.json", tmp_path / "state", sources={"counter": {"per_run": 3}}
        )
        child = Child(config, {"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "200000"})
        children.append(child)
        notify.wait_for("READY=1")
        status = next(s for s in notify.states if s.startswith("STATUS="))
        assert "counter" in status and "outbox" in status
        notify.wait_for("WATCHDOG=1")
        notify.wait_for("WATCHDOG=1")
        child.signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1")
        assert any(s.startswith("MONOTONIC_USEC=") for s in notify.states)
        notify.wait_for("READY=1")
        child.signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert child.stop() == 0
    finally:
        notify.close()


def test_reload_applies_the_new_log_level(tmp_path: Path, children: list) -> None:
    """After SIGHUP the new config's log level is in force (info events appear)."""
    notify = NotifySocket()
    try:
        state = tmp_path / "state"
        config = write_config(
            tmp_path / "params.json",
            state,
            log={"level": "warning"},
            sources={"counter": {"per_run": 4}},
        )
        child = Child(config, {"NOTIFY_SOCKET": notify.name})
        children.append(child)
        notify.wait_for("READY=1")
        write_config(config, state, log={"level": "info"}, sources={"counter": {"per_run": 4}})
        child.signal(signal.SIGHUP)
        child.wait_event("config_reloaded")
        child.wait_event("counter_emitted")  # an info event: the first run may have been
        assert child.stop() == 0  # cancelled by the reload, so `next` is 4 or 8
        assert [e for e in child.events if e["event"] == "daemon_ready"] == []
    finally:
        notify.close()


def test_a_reload_whose_sink_fails_keeps_the_previous_config(
    tmp_path: Path, children: list
) -> None:
    """A new sink that cannot be opened fails the reload; the old collectors run again."""
    state = tmp_path / "state"
    config = write_config(tmp_path / "params.json", state, sources={"counter": {"per_run": 3}})
    child = Child(config)
    children.append(child)
    child.wait_event("counter_emitted", lambda e: e["next"] == 3)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    unopenable = {"type": "embedded", "path": str(blocker / "points.db")}
    write_config(config, state, sink=unopenable, sources={"counter": {"per_run": 50}})
    child.signal(signal.SIGHUP)
    failed = child.wait_event("reload_failed")
    assert "not-a-directory" in failed["error"] and failed["keeping"] == "current config"
    child.wait_event("counter_emitted", lambda e: e["next"] == 6)  # old per_run, old sink
    assert child.stop() == 0
    assert checkpoint(state) == 6
