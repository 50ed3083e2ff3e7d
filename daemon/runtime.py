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
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

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
        on_config: Callable[[Config], None] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.export_hook = export_hook
        self.on_config = on_config
        self.pipeline: Pipeline | None = None
        self.supervisor: Supervisor | None = None
        self.stopping = asyncio.Event()
        self._started = False
        self._reload_requested = False
        self._reload_lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = structlog.get_logger("chargeflux.daemon")

    async def _start_pipeline(self) -> Pipeline:
        self.pipeline = Pipeline(self.config)
        await self.pipeline.start()
        self._http = http_session()
        return self.pipeline

    def _build_supervisor(self, pipeline: Pipeline, config: Config | None = None) -> Supervisor:
        assert self._http is not None
        supervisor = Supervisor(config or self.config, pipeline, self._http)
        supervisor.build()
        return supervisor

    async def run_once(self, stream_for: float = 0.0) -> int:
        """Run every job once (and push streams for `stream_for` seconds), drain, exit code."""
        pipeline = await self._start_pipeline()
        ok = False
        try:
            supervisor = self.supervisor = self._build_supervisor(pipeline)
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
        """Run until SIGTERM/SIGINT; exit code 0 after a clean drain.

        Signal handlers are installed before anything starts and stay until the end, so a
        signal during start-up or during the drain is handled, never fatal."""
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: self._request_stop,
            signal.SIGINT: self._request_stop,
            signal.SIGHUP: self._request_reload,
            signal.SIGUSR1: self._request_export,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        try:
            pipeline = await self._start_pipeline()
            try:
                self.supervisor = self._build_supervisor(pipeline)
                self.supervisor.start()
                self._started = True
                self._spawn(self.notifier.watchdog())
                self._spawn(self._metrics_loop())
                self.notifier.ready(self._status())
                self._log.info("daemon_ready", sources=sorted(self.supervisor.collectors))
                if self._reload_requested:
                    self._request_reload()
                await self.stopping.wait()
            finally:
                await self._stop(pipeline)
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)
        self._log.info("daemon_stopped")
        return 0

    async def _stop(self, pipeline: Pipeline) -> None:
        self.stopping.set()
        self.notifier.stopping()
        self._log.info("daemon_stopping")
        for task in self._tasks:
            if task.get_name() != "reload":
                task.cancel()
        async with self._reload_lock:  # a reload in progress finishes first
            if self.supervisor is not None:
                await self.supervisor.stop()
        with contextlib.suppress(Exception):
            await pipeline.emit_metrics()
        await self._shutdown(self.config.outbox.drain_timeout_s)

    def _request_stop(self) -> None:
        if self.stopping.is_set():
            self._log.info("stop_already_in_progress")
            return
        self.stopping.set()

    def _request_reload(self) -> None:
        if self.stopping.is_set():
            self._log.info("reload_ignored", reason="stopping")
        elif not self._started:
            self._reload_requested = True  # once started
        else:
            self._reload_requested = False
            self._spawn(self.reload(), "reload")

    def _request_export(self) -> None:
        if self._started and not self.stopping.is_set():
            self._spawn(self.export(), "export")
        else:
            self._log.info("export_ignored", reason="not running")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str | None = None) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._log.error(
                "task_failed", task=task.get_name(), error=str(exc), error_type=type(exc).__name__
            )

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
        """Re-read the config and restart the collectors; buffered data is kept.

        An invalid file is rejected before anything stops. If the new collectors or sink
        cannot be set up, the previous config's collectors are started again."""
        async with self._reload_lock:
            if self.stopping.is_set():
                return
            assert self.pipeline is not None and self.supervisor is not None
            self.notifier.reloading()
            try:
                config = load_config(self.config_path)
            except ConfigError as exc:
                self._log.error("reload_rejected", error=str(exc), keeping="current config")
                self.notifier.ready(self._status())
                return
            self._warn_restart_needed(config)
            await self.supervisor.stop()
            # logging first: collectors bind their loggers (and so the level) when built
            self._apply(config)
            try:
                await self.pipeline.apply_checks(config)
                supervisor = self._build_supervisor(self.pipeline, config)
                try:
                    await self.pipeline.replace_sink(config)
                except BaseException:
                    await supervisor.stop()
                    raise
            except Exception as exc:  # keep collecting with what worked before
                self._log.error(
                    "reload_failed",
                    error=str(exc),
                    error_type=type(exc).__name__,
                    keeping="current config",
                )
                self._apply(self.config)
                supervisor = self._build_supervisor(self.pipeline)
            else:
                self.config = config
                self._log.info("config_reloaded", sources=sorted(supervisor.collectors))
            self.supervisor = supervisor
            supervisor.start()
            self.notifier.ready(self._status())

    def _apply(self, config: Config) -> None:
        if self.on_config is not None:
            self.on_config(config)

    def _warn_restart_needed(self, config: Config) -> None:
        changed = [
            key
            for key in ("state_dir", "outbox")
            if getattr(config, key) != getattr(self.config, key)
        ]
        if changed:
            self._log.warning(
                "reload_needs_restart", keys=changed, hint="these settings apply at the next start"
            )

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
