"""Runs the collectors: builds them from config, schedules their jobs, supervises streams.

Each job runs under APScheduler (one instance at a time, missed runs coalesced). A failing
job or stream is logged once when it starts failing and once when it recovers, not on every
failure; every failure is counted in the collector's `errors`. A stream that raises is
restarted with jittered backoff; a stream that returns has stopped on purpose (e.g. an
invalid token) and is left stopped while the rest of the daemon carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.backoff import Backoff
from daemon.collector import Collector, CollectorContext, Job
from daemon.config import Config
from daemon.pipeline import Pipeline
from daemon.registry import plugin

__all__ = ["Supervisor"]


class _Health:
    """Log-once bookkeeping for one job or stream."""

    def __init__(self, log: structlog.typing.FilteringBoundLogger) -> None:
        self._log = log
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            self._log.error("job_failing", error=str(exc), error_type=type(exc).__name__)
        else:
            self._log.debug("job_still_failing", error=str(exc))

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            self._log.info("job_recovered")


class Supervisor:
    """The set of running collectors for one config generation."""

    def __init__(self, config: Config, pipeline: Pipeline, http: aiohttp.ClientSession) -> None:
        self._config = config
        self._pipeline = pipeline
        self._http = http
        self._log = structlog.get_logger("chargeflux.supervisor")
        self.collectors: dict[str, Collector] = {}
        self._streams: list[asyncio.Task[None]] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._health: dict[str, _Health] = {}
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    def build(self) -> None:
        for name, source_config in self._config.enabled_sources().items():
            context = CollectorContext(
                name=name,
                emit=self._pipeline.emitter_for(name),
                checkpoints=self._pipeline.checkpoints_for(name),
                http=self._http,
                counters=self._pipeline.metrics.component(name),
                log=structlog.get_logger(f"chargeflux.{name}").bind(source=name),
                state_dir=self._pipeline.state_dir,
            )
            self.collectors[name] = plugin(name).create(source_config, context)
        self._log.info("collectors_built", sources=sorted(self.collectors))

    def _jobs(self) -> list[tuple[str, Job]]:
        return [(name, job) for name, c in self.collectors.items() for job in c.jobs()]

    async def _run_job(self, source: str, job: Job) -> bool:
        key = f"{source}.{job.name}"
        health = self._health.setdefault(key, _Health(self._log.bind(source=source, job=job.name)))
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await job.run()
        except asyncio.CancelledError:
            if self._stopping:  # stopped on purpose (reload, shutdown): not a job failure
                self._log.info("job_cancelled", source=source, job=job.name)
                return False
            raise
        except Exception as exc:  # a job's failure must never stop the daemon
            self._pipeline.metrics.component(source).inc("errors")
            health.failed(exc)
            return False
        finally:
            self._running.discard(task)  # type: ignore[arg-type]
        health.succeeded()
        return True

    async def run_once(self) -> bool:
        """Run every job once, concurrently; True when all succeeded."""
        results = await asyncio.gather(*(self._run_job(s, j) for s, j in self._jobs()))
        return all(results)

    def start(self, streams: bool = True) -> None:
        """Schedule every job and start the push streams."""
        scheduler = AsyncIOScheduler()
        now = datetime.now(ZoneInfo("UTC"))
        for source, job in self._jobs():
            trigger = (
                CronTrigger.from_crontab(job.cron, timezone=ZoneInfo(job.timezone))
                if job.cron
                else IntervalTrigger(seconds=job.every.total_seconds())  # type: ignore[union-attr]
            )
            # APScheduler reads next_run_time=None as "paused": leave it out to follow the trigger
            first_run = {"next_run_time": now} if job.run_at_start else {}
            scheduler.add_job(
                self._run_job,
                trigger,
                args=(source, job),
                id=f"{source}.{job.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
                **first_run,
            )
        scheduler.start()
        self._scheduler = scheduler
        if streams:
            self.start_streams()

    def start_streams(self) -> None:
        for name, collector in self.collectors.items():
            self._streams.append(
                asyncio.create_task(self._supervise(name, collector), name=f"stream-{name}")
            )

    async def _supervise(self, name: str, collector: Collector) -> None:
        health = _Health(self._log.bind(source=name, job="stream"))
        backoff = Backoff(1.0, 60.0)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await collector.stream()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # restart the stream, whatever broke it
                self._pipeline.metrics.component(name).inc("errors")
                health.failed(exc)
                if loop.time() - started > backoff.cap:
                    backoff.reset()  # it ran fine for a while: a fresh failure, not a streak
                await asyncio.sleep(backoff.next())

    async def stop(self) -> None:
        """Stop scheduling, cancel streams and running jobs, close every collector."""
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        tasks = [*self._streams, *self._running]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._streams.clear()
        await _close_all(list(self.collectors.values()))
        self.collectors.clear()


async def _close_all(collectors: Sequence[Collector]) -> None:
    for collector in collectors:
        with contextlib.suppress(Exception):
            await collector.close()
