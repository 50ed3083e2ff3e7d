"""A local BlueCurrent: the websocket server (`/haserver`) and the REST API, for tests and demo.

Strict like the real service: a command without the `Authorization` body field is refused
with ERROR 2, a wrong or expired session token with ERROR 1, an unknown command with ERROR 0,
a frame that is not a JSON object with ERROR 9; the REST API answers 401 without a valid
`Authorization: Token` header and 400 on missing or invalid parameters.

Options (`SimulatorOptions`) drop each connection after N data frames (`drop_mode`: a TCP
FIN without a close frame, a close frame 1011, or a reset), insert a malformed frame every
N data frames,
enforce a request limit (ERROR 42, close code 4001, then handshakes rejected with
`x-websocket-reject-reason: Request limit reached` until `reset_request_limit()`), refuse
extra connections ("Already connected"), and push `CH_STATUS` (and every `grid_every`-th a
`GRID_CURRENT`) round-robin over many charge points at a rate or as fast as possible.
Every data frame sent is recorded in `sent` (counted only, with `record=False`), so tests
can check nothing was lost. One task writes each connection; frames queued together leave
in one write of whole frames, so the simulator outpaces the client it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from collectors.bluecurrent.simdata import SimData
from collectors.bluecurrent.simlink import CLOSE_4001, HIGH_WATER, Link, run_sender
from collectors.bluecurrent.simulator_rest import rest_app

__all__ = ["BlueCurrentSimulator", "SimulatorOptions"]

WS_PATH = "/haserver"
REST_PATH = "/app/bc_api/api/v2.0"


@dataclass
class SimulatorOptions:
    """How the simulator behaves (defaults: three charge points, no pushes, no faults)."""

    api_token: str = "sim-api-token"
    charge_points: int = 3
    transactions: int = 30
    push_total: int = 0
    push_rate: float | None = None
    grid_every: int = 10
    drop_every: int | None = None
    drop_mode: Literal["eof", "close_frame", "abort"] = "eof"
    drop_limit: int | None = None
    record: bool = True
    garbage_every: int | None = None
    request_limit: int | None = None
    max_connections: int | None = None
    host: str = "127.0.0.1"
    ws_port: int = 0
    rest_port: int = 0


class BlueCurrentSimulator:
    """`async with BlueCurrentSimulator(options) as sim:` then aim a client at `sim.ws_url`."""

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self.data = SimData(self.options.charge_points, self.options.transactions)
        self.tokens: set[str] = set()
        self.logins = 0
        self.connections = 0
        self.handshakes_rejected = 0
        self.requests = 0
        self.limited = False
        self.commands: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.sent_count = 0
        self.garbage_sent = 0
        self.drops = 0
        self.pushed = 0
        self._push_seq = 0
        self.push_done = asyncio.Event()
        self.throttle_rest = 0
        self.throttle_retry_after = 1
        self._links: set[Link] = set()
        self._server: Server | None = None
        self._runner: web.AppRunner | None = None
        self.ws_url = ""
        self.api_url = ""

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        opts = self.options
        self._server = await serve(
            self._handle,
            opts.host,
            opts.ws_port,
            process_request=self._process_request,
            compression=None,
            max_queue=4096,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://{opts.host}:{port}{WS_PATH}"
        self._runner = web.AppRunner(rest_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, opts.host, opts.rest_port)
        await site.start()
        rest_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_url = f"http://{opts.host}:{rest_port}{REST_PATH}"

    async def stop(self) -> None:
        for link in list(self._links):
            if link.pushing is not None:
                link.pushing.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> BlueCurrentSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- test hooks ----------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Invalidate every session token (commands get ERROR 1, REST gets 401)."""
        self.tokens.clear()

    def reset_request_limit(self) -> None:
        self.requests = 0
        self.limited = False

    def authorized(self, header: str | None) -> bool:
        return bool(header) and header.removeprefix("Token ") in self.tokens  # type: ignore[union-attr]

    def count_request(self) -> bool:
        """Count one request; False once the request limit is reached."""
        self.requests += 1
        limit = self.options.request_limit
        if limit is not None and self.requests > limit:
            self.limited = True
        return not self.limited

    # --- websocket -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        reason = None
        if self.limited:
            reason = "Request limit reached"
        elif self.options.max_connections is not None and (
            len(self._links) >= self.options.max_connections
        ):
            reason = "Already connected"
        if reason is None:
            return None
        self.handshakes_rejected += 1
        response = connection.respond(HTTPStatus.FORBIDDEN, f"{reason}\n")
        response.headers["x-websocket-reject-reason"] = reason
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        link = Link(ws)
        self._links.add(link)
        self.connections += 1
        sender = asyncio.create_task(run_sender(self, link))
        try:
            async for raw in ws:
                self._on_command(link, raw)
        except ConnectionClosed:
            pass
        finally:
            self._links.discard(link)
            if link.pushing is not None:
                link.pushing.cancel()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _reply(
        self, link: Link, message: dict[str, Any], data: bool = False, push: bool = False
    ) -> None:
        link.queue.put_nowait((json.dumps(message), message if data else None, push))

    def _error(self, link: Link, code: int, message: str) -> None:
        self._reply(link, {"object": "ERROR", "error": code, "message": message})

    def _on_command(self, link: Link, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._error(link, 9, "Unknown error")
            return
        name = message.get("command")
        self.commands.append(str(name))
        if not self.count_request():
            self._error(link, 42, "Request limit reached")
            link.queue.put_nowait((CLOSE_4001, None, False))
            return
        if name == "VALIDATE_API_TOKEN":
            self._validate(link, message)
            return
        if not isinstance(name, str) or name not in _COMMANDS:
            self._error(link, 0, "Unknown command")
            return
        auth = message.get("Authorization")
        if not isinstance(auth, str) or not auth.startswith("Token "):
            self._error(link, 2, "Not authorized")
            return
        if not self.authorized(auth):
            self._error(link, 1, "Invalid Auth Token")
            return
        getattr(self, _COMMANDS[name])(link, message)

    def _validate(self, link: Link, message: dict[str, Any]) -> None:
        self.logins += 1
        if message.get("token") != self.options.api_token:
            self._reply(link, {"object": "STATUS_API_TOKEN", "success": False, "error": ""})
            return
        token = f"sim-session-{self.logins:04d}"
        self.tokens.add(token)
        reply = {"object": "STATUS_API_TOKEN", "success": True, "token": token}
        self._reply(link, {**reply, "customer_id": "1234567", "error": ""})

    def _evse(self, link: Link, message: dict[str, Any]) -> str | None:
        evse_id = message.get("evse_id")
        if not isinstance(evse_id, str) or not evse_id:
            self._error(link, 9, "evse_id is required")
            return None
        if evse_id not in self.data.counters:
            self._error(link, 2, "Not authorized")
            return None
        return evse_id

    def _hello(self, link: Link, message: dict[str, Any]) -> None:
        self._reply(link, {"object": "HELLO"})
        if self.options.push_total and link.pushing is None:
            link.pushing = asyncio.create_task(self._push(link))

    def _account_wide(self, link: Link, message: dict[str, Any]) -> None:
        """Commands about the whole account (no evse_id)."""
        self._reply(link, self.data.answer(message["command"]))

    def _per_charge_point(self, link: Link, message: dict[str, Any]) -> None:
        """Commands about one charge point; status and grid answers are data frames."""
        name = message["command"]
        if name == "GET_GRID_STATUS":
            link.grid_requests += 1
        if evse_id := self._evse(link, message):
            data = name in ("GET_CH_STATUS", "GET_GRID_STATUS")
            self._reply(link, self.data.answer(name, evse_id), data)

    async def _push(self, link: Link) -> None:
        """Push statuses round-robin until `push_total` pushes were sent overall (pushes
        still queued when a connection drops are made again on the next one)."""
        opts = self.options
        evse_ids = self.data.evse_ids
        loop = asyncio.get_running_loop()
        started, first = loop.time(), self.pushed
        while self.pushed + link.queued_pushes < opts.push_total:
            if opts.push_rate:
                due = started + (self.pushed + link.queued_pushes - first) / opts.push_rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                    continue
            self._push_seq += 1
            evse_id = evse_ids[self._push_seq % len(evse_ids)]
            link.queued_pushes += 1
            if opts.grid_every and self._push_seq % opts.grid_every == 0:
                self._reply(link, self.data.grid_current(evse_id), data=True, push=True)
            else:
                self._reply(link, self.data.next_status(evse_id), data=True, push=True)
            if link.queue.qsize() > HIGH_WATER:
                link.room.clear()
                await link.room.wait()

    def settled(self) -> bool:
        """Nothing more will be sent: every push made, every drop done, and a connection is
        up whose client asked for every grid status and got every answer."""
        opts = self.options
        if opts.push_total and not self.push_done.is_set():
            return False
        if opts.drop_every and opts.drop_limit is not None and self.drops < opts.drop_limit:
            return False
        return bool(self._links) and all(
            link.queue.empty() and not link.busy and link.grid_requests >= self.data.charge_points
            for link in self._links
        )


_COMMANDS = {
    "HELLO": "_hello",
    "GET_CHARGE_POINTS": "_account_wide",
    "GET_ACCOUNT": "_account_wide",
    "GET_CHARGE_CARDS": "_account_wide",
    "GET_SUSTAINABILITY_STATUS": "_account_wide",
    "GET_CH_STATUS": "_per_charge_point",
    "GET_GRID_STATUS": "_per_charge_point",
    "GET_CH_SETTINGS": "_per_charge_point",
}
