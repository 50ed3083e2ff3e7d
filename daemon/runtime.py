"""The daemon's lifecycle: start, signals, reload, systemd notifications, stop.

    start   pipeline (state DB, outbox, sink, flusher) → HTTP session → collectors → READY=1
    SIGHUP  re-read the config; if valid, restart the collectors (and swap the sink when it
            changed); the outbox and everything buffered stays. An invalid file is logged
            and the running config kept.
    SIGUSR1 run the monthly export hook for the last complete month.
    SIGTERM / SIGINT  stop collectors, commit pending records, drain the outbox within
            `outbox.drain_timeout_s` (the rest stays on disk for the next start), exit 0.

`--once` runs every job once, drains and exits (non-zero when a job failed or the outbox
could not be drained).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import structlog

from daemon.config import Config, load_config
from daemon.errors import ConfigError
from daemon.pipeline import Pipeline
from daemon.supervisor import Supervisor
from daemon.systemd import Notifier

__all__ = ["Daemon", "ExportHook"]

ExportHook = Callable[[], Awaitable[None]]


def http_session() -> aiohttp.ClientSession:
    """The HTTP session shared by collectors (TLS verification on, bounded pool)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=300),
        headers={"User-Agent": "chargeflux"},
        raise_for_status=False,
    )


class Daemon:
    """One running chargeflux process."""

    def __init__(
        self,
        config: Config,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        export_hook: ExportHook | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.export_hook = export_hook
        self.pipeline: Pipeline | None = None
        self.supervisor: Supervisor | None = None
        self.stopping = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._log = structlog.get_logger("chargeflux.daemon")

    async def _start_pipeline(self) -> Pipeline:
        self.pipeline = Pipeline(self.config)
        await self.pipeline.start()
        self._http = http_session()
        return self.pipeline

    def _build_supervisor(self, pipeline: Pipeline) -> Supervisor:
        assert self._http is not None
        supervisor = Supervisor(self.config, pipeline, self._http)
        supervisor.build()
        return supervisor

    async def run_once(self, stream_for: float = 0.0) -> int:
        """Run every job once (and push streams for `stream_for` seconds), drain, exit code."""
        pipeline = await self._start_pipeline()
        supervisor = self.supervisor = self._build_supervisor(pipeline)
        try:
            if stream_for > 0:
                supervisor.start_streams()
            ok = await supervisor.run_once()
            if stream_for > 0:
                await asyncio.sleep(stream_for)
            await supervisor.stop()
            await pipeline.emit_metrics()
        finally:
            drained = await self._shutdown(self.config.outbox.drain_timeout_s)
        return 0 if ok and drained else 1

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; exit code 0 after a clean drain."""
        loop = asyncio.get_running_loop()
        pipeline = await self._start_pipeline()
        self.supervisor = self._build_supervisor(pipeline)
        self.supervisor.start()
        handlers = {
            signal.SIGTERM: self.stopping.set,
            signal.SIGINT: self.stopping.set,
            signal.SIGHUP: lambda: self._spawn(self.reload()),
            signal.SIGUSR1: lambda: self._spawn(self.export()),
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        self._spawn(self.notifier.watchdog())
        self._spawn(self._metrics_loop())
        self.notifier.ready(self._status())
        self._log.info("daemon_ready", sources=sorted(self.supervisor.collectors))
        try:
            await self.stopping.wait()
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)
            self.notifier.stopping()
            self._log.info("daemon_stopping")
            await self.supervisor.stop()
            for task in self._tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await pipeline.emit_metrics()
            await self._shutdown(self.config.outbox.drain_timeout_s)
        self._log.info("daemon_stopped")
        return 0

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    def _status(self) -> str:
        assert self.pipeline is not None and self.supervisor is not None
        blocked = self.pipeline.flusher.blocked_reason
        sources = ", ".join(sorted(self.supervisor.collectors)) or "no sources"
        state = f"sink blocked: {blocked}" if blocked else f"writing to {self.pipeline.sink.name}"
        return f"{sources}; outbox {self.pipeline.outbox.depth} points; {state}"

    async def _metrics_loop(self) -> None:
        assert self.pipeline is not None
        while True:
            await asyncio.sleep(self.config.metrics_interval_s)
            try:
                await self.pipeline.emit_metrics()
            except Exception as exc:  # metrics must never stop the daemon
                self._log.warning("metrics_emit_failed", error=str(exc))
            self.notifier.status(self._status())

    async def reload(self) -> None:
        """Re-read the config and restart the collectors; buffered data is kept."""
        assert self.pipeline is not None and self.supervisor is not None
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self._log.error("reload_rejected", error=str(exc), keeping="current config")
            self.notifier.ready(self._status())
            return
        await self.supervisor.stop()
        self.config = config
        await self.pipeline.replace_sink(config)
        self.supervisor = self._build_supervisor(self.pipeline)
        self.supervisor.start()
        self._log.info("config_reloaded", sources=sorted(self.supervisor.collectors))
        self.notifier.ready(self._status())

    async def export(self) -> None:
        """The SIGUSR1 hook: the monthly export for the last complete month."""
        if self.export_hook is None:
            self._log.warning("export_unavailable", reason="no monthly export is configured")
            return
        try:
            await self.export_hook()
        except Exception as exc:  # an export failure is reported, the daemon goes on
            self._log.error("export_failed", error=str(exc))

    async def _shutdown(self, drain_timeout: float | None) -> bool:
        assert self.pipeline is not None
        if self._http is not None:
            await self._http.close()
            self._http = None
        return await self.pipeline.close(drain_timeout)
