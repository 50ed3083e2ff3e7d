"""Test probes for in-process engine tests: wait on log events and on an empty outbox,
and a small local server imitating InfluxDB's `/write` error answers.

The fake server exists only for answers a real InfluxDB 1.x cannot be made to give (429 with
Retry-After, 401 for a valid request); everything else is tested against a real server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.outbox import Batch, Outbox

__all__ = ["FakeInflux", "LogWatch", "drained", "watch_logs"]


class LogWatch:
    """A structlog processor keeping every event, with `wait()` for one to appear."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> Any:
        self.events.append(dict(event))
        self._changed.set()
        raise structlog.DropEvent

    def named(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == name]

    async def wait(
        self, name: str, where: Callable[[dict[str, Any]], bool] = lambda e: True, timeout=10.0
    ) -> dict[str, Any]:
        """The first event called `name` matching `where`; TimeoutError after `timeout` s."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                for event in self.events:
                    if event["event"] == name and where(event):
                        return event
                await self._changed.wait()


def watch_logs() -> Iterator[LogWatch]:
    """Route structlog into a LogWatch for one test (use as a fixture body)."""
    watch = LogWatch()
    structlog.configure(
        processors=[structlog.processors.add_log_level, watch], cache_logger_on_first_use=False
    )
    try:
        yield watch
    finally:
        structlog.reset_defaults()


def drained(outbox: Outbox) -> asyncio.Event:
    """An event set each time an acknowledgement leaves the outbox empty."""
    empty = asyncio.Event()
    ack = outbox.ack

    async def ack_and_check(batch: Batch, dead: Any = ()) -> None:
        await ack(batch, dead)
        if outbox.depth == 0:
            empty.set()

    outbox.ack = ack_and_check  # type: ignore[method-assign]
    return empty


@dataclass
class Answer:
    status: int
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    at: float
    body: bytes
    authorization: str | None


class FakeInflux:
    """A local `/write` endpoint answering from a script (then 204), checking the request
    the way InfluxDB 1.x does (db and precision parameters, a body)."""

    def __init__(self, answers: list[Answer], repeat_last: bool = False) -> None:
        self.answers = answers
        self.repeat_last = repeat_last
        self.requests: list[Request] = []
        self.server: TestServer | None = None

    async def _write(self, request: web.Request) -> web.Response:
        if not request.query.get("db"):
            return _error(400, "database is required")
        if request.query.get("precision") not in (None, "ns", "u", "ms", "s"):
            return _error(400, "invalid precision")
        body = await request.read()
        if not body:
            return _error(400, "no data received")
        loop = asyncio.get_running_loop()
        self.requests.append(Request(loop.time(), body, request.headers.get("Authorization")))
        if self.answers:
            answer = self.answers[0] if self.repeat_last and len(self.answers) == 1 else None
            answer = answer or self.answers.pop(0)
            if answer.status != 204:
                return _error(answer.status, answer.error, answer.headers)
        return web.Response(status=204)

    async def __aenter__(self) -> FakeInflux:
        app = web.Application()
        app.router.add_post("/write", self._write)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"error": message}),
        content_type="application/json",
        headers=headers or {},
    )
