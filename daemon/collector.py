"""The collector interface: what every source in `collectors/` implements.

A collector knows one external system. The engine gives it a `CollectorContext` (emitter,
checkpoints, HTTP session, counters, logger) and asks it for its `jobs()`: coroutines the
scheduler runs on an interval or a cron expression (and `chargeflux run --once` runs once
each). Push sources also implement `stream()`, which runs for the daemon's lifetime and is
restarted with backoff when it raises. `close()` releases what the collector opened.

A source is plugged in by a `SourcePlugin` in its package, listed by name in
`daemon.registry`; the engine never imports a collector anywhere else.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Generic, Protocol, TypeVar

import aiohttp
from pydantic import AfterValidator, BaseModel, ConfigDict

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from daemon.emitter import Emitter
    from daemon.metrics import Counters
    from daemon.state import Checkpoints

__all__ = [
    "Collector",
    "CollectorContext",
    "DemoEnv",
    "HttpUrl",
    "Job",
    "PolledCollector",
    "SourceConfig",
    "SourcePlugin",
]


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""A base URL option: http(s) only, trailing slash removed (paths are appended to it)."""


class SourceConfig(BaseModel):
    """Base of every source's config block (`sources.<name>` in params.json)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


@dataclass(frozen=True)
class Job:
    """A scheduled unit of work: `run` is awaited every `every`, or on the `cron` expression
    ("minute hour day month day_of_week", evaluated in `timezone`). `run_at_start` runs it
    once as soon as the daemon starts (backfills); `--once` runs every job exactly once."""

    name: str
    run: Callable[[], Awaitable[None]]
    every: timedelta | None = None
    cron: str | None = None
    timezone: str = "Europe/Paris"
    run_at_start: bool = True

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"job {self.name!r} needs exactly one of `every` and `cron`")


@dataclass
class CollectorContext:
    """What the engine hands a collector: everything it may touch, nothing global."""

    name: str
    emit: Emitter
    checkpoints: Checkpoints
    http: aiohttp.ClientSession
    counters: Counters
    log: FilteringBoundLogger
    state_dir: Path


class Collector(Protocol):
    """One external source."""

    def jobs(self) -> Sequence[Job]:
        """The scheduled jobs (polls, backfills). May be empty for pure push sources."""
        ...

    async def stream(self) -> None:
        """Run a push subscription until cancelled; polled sources return at once."""
        ...

    async def close(self) -> None:
        """Release connections and tasks. Called once, on stop or reload."""
        ...


@dataclass
class DemoEnv:
    """What a source's demo hook gets: a scratch directory and the shared HTTP session."""

    workdir: Path
    http: aiohttp.ClientSession
    options: dict[str, Any] = field(default_factory=dict)


C = TypeVar("C", bound=SourceConfig)

DemoHook = Callable[[DemoEnv], AbstractAsyncContextManager[dict[str, Any]]]
"""Starts the source's simulator and yields the `sources.<name>` config block aimed at it."""


@dataclass(frozen=True)
class SourcePlugin(Generic[C]):
    """How the engine knows a source: its name, config model, factory, and optional hooks.

    `demo` starts a simulator for `chargeflux demo`; `add_cli` adds subcommands (setup and
    troubleshooting commands like `chargeflux bluecurrent charge-points`)."""

    name: str
    config_model: type[C]
    create: Callable[[C, CollectorContext], Collector]
    demo: DemoHook | None = None
    add_cli: Callable[[argparse._SubParsersAction], None] | None = None


class PolledCollector:
    """Convenience base for sources without a push subscription."""

    def jobs(self) -> Sequence[Job]:
        raise NotImplementedError

    async def stream(self) -> None:
        return None

    async def close(self) -> None:
        return None
