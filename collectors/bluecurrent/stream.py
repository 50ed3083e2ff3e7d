"""The live BlueCurrent subscription: connect, subscribe, consume pushed statuses forever.

One connection: `HELLO`, `GET_CHARGE_POINTS`, then `GET_CH_STATUS` and `GET_GRID_STATUS` for
every followed charge point, then every pushed `CH_STATUS` / `GRID_STATUS` / `GRID_CURRENT`
becomes a point. The hot path validates each raw frame once (`DATA_MESSAGE.validate_json`),
maps it through the declarative tables, and batches points: a batch is handed to the
outbox's group commit (`submit_points`) when the socket's buffer is drained or a batch is
full. The commit futures are kept; a connection's end and `close()` wait for all of them, and
a failed commit is resubmitted, so a message received is a message stored. Too many
uncommitted batches pause reading (TCP backpressure) instead of growing memory.

Everything else is classified: `ERROR` (1: log in again, 42: wait for the daily reset, other
codes: logged), acks (`*RECEIVED*`, ignored unless they carry an error), `HELLO`,
`*OPERATIVE*` and the answers we do not store (ignored). Frames that are not JSON, not an
object, carry no or an unknown `object`, or wrong field types are logged with a sample
(at most once per 10 s per kind) and counted in `malformed_frames` and `errors`.

`run()` reconnects forever with `Backoff` and returns only when the API token is invalid;
`snapshot()` runs one connection until every followed charge point has answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from collectors.bluecurrent.backoff import Backoff, Clock, next_limit_reset
from collectors.bluecurrent.client import (
    Auth,
    ConnectionDropped,
    InvalidToken,
    RequestLimitReached,
    TokenExpired,
    command,
    error_from_message,
    open_socket,
    translate_ws_error,
)
from collectors.bluecurrent.mapping import StatusMapper
from collectors.bluecurrent.models import DATA_MESSAGE, ChargePointsMessage, ErrorMessage
from daemon.collector import CollectorContext
from daemon.errors import SourceError
from daemon.points import Point

__all__ = ["Subscription"]

_BATCH = 2000
_MAX_PENDING = 64
_COMMIT_ATTEMPTS = 3
_LOG_EVERY_S = 10.0
_DATA_OBJECTS = frozenset({"CH_STATUS", "GRID_STATUS", "GRID_CURRENT"})
_QUIET_OBJECTS = frozenset(
    {
        "HELLO",
        "STATUS_API_TOKEN",
        "CH_SETTINGS",
        "CHARGE_CARDS",
        "ACCOUNT",
        "SUSTAINABILITY_STATUS",
        "LIST_OVERRIDE_CURRENT",
        "LINKED_CHARGE_CARDS_ONLY",
        "PLUG_AND_CHARGE",
        "SOFT_RESET",
        "REBOOT",
        "START_SESSION",
        "STOP_SESSION",
    }
)
_QUIET_PREFIXES = ("STATUS_", "POST_", "SET_", "SAVE_", "PATCH_", "OVERRIDE_", "CHARGE_CARD")


class Subscription:
    """The websocket consumer of one collector."""

    def __init__(
        self,
        ctx: CollectorContext,
        auth: Auth,
        *,
        ws_url: str,
        clock: Clock,
        backoff: Backoff,
        evse_ids: Sequence[str] = (),
        on_charge_points: Callable[[list[str]], None] | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._ctx = ctx
        self._auth = auth
        self._url = ws_url
        self._clock = clock
        self.backoff = backoff
        self._wanted = list(evse_ids)
        self._charge_points_seen = on_charge_points
        self._timeout = timeout
        self._mapper = StatusMapper()
        self._batch: list[Point] = []
        self._flush_scheduled = False
        self._pending: dict[asyncio.Future[None], tuple[list[Point], int]] = {}
        self._outgoing: list[str] = []
        self._token: str | None = None
        self._logged: dict[str, tuple[float, int]] = {}
        self._awaiting_status: set[str] | None = None
        self._awaiting_grids = 0
        self.received = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Consume forever, reconnecting; returns when the API token is invalid."""
        counters, log = self._ctx.counters, self._ctx.log
        refused_in_a_row = 0
        while True:
            received_before = self.received
            try:
                await self._connection(once=False)
                raise ConnectionDropped("server closed the connection")
            except InvalidToken as exc:
                counters.inc("errors")
                log.error(
                    "bluecurrent_invalid_token",
                    error=str(exc),
                    action="collector stopped; fix sources.bluecurrent.api_token",
                )
                self._auth.mark_invalid(str(exc))
                return
            except RequestLimitReached as exc:
                await self._wait_for_limit_reset(exc)
            except TokenExpired as exc:
                refused_in_a_row = refused_in_a_row + 1 if self.received == received_before else 1
                counters.inc("errors")
                self._auth.forget(self._token)
                if refused_in_a_row >= 3:
                    log.error("bluecurrent_token_refused", error=str(exc), attempts=3)
                    self._auth.mark_invalid(str(exc))
                    return
                await self._retry_later(exc)
            except (SourceError, WebSocketException, OSError, TimeoutError) as exc:
                await self._retry_later(translate_ws_error(exc))
            finally:
                await self.drain()

    async def snapshot(self, timeout: float) -> None:
        """One connection: statuses of every followed charge point, then disconnect."""
        try:
            async with asyncio.timeout(timeout):
                await self._connection(once=True)
        except TimeoutError:
            missing = sorted(self._awaiting_status or ())
            self._ctx.log.warning(
                "bluecurrent_snapshot_incomplete", missing=missing[:20], count=len(missing)
            )
        except (WebSocketException, OSError) as exc:
            raise translate_ws_error(exc) from exc
        finally:
            await self.drain()

    async def _wait_for_limit_reset(self, exc: RequestLimitReached) -> None:
        now = self._clock.now()
        reset = next_limit_reset(now)
        wait = (reset - now).total_seconds()
        self._ctx.counters.inc("errors")
        self._ctx.log.warning(
            "bluecurrent_request_limit", error=str(exc), resets_at=reset.isoformat(), wait_s=wait
        )
        await self._clock.sleep(wait)
        self.backoff.reset()

    async def _retry_later(self, exc: BaseException) -> None:
        delay = self.backoff.next_delay()
        self._ctx.counters.inc("errors")
        self._ctx.counters.inc("reconnects")
        self._ctx.log.warning(
            "bluecurrent_disconnected",
            error=str(exc),
            retry_in_s=round(delay, 3),
            attempt=self.backoff.attempt,
        )
        await self._clock.sleep(delay)

    # --- one connection ----------------------------------------------------------------

    async def _connection(self, *, once: bool) -> None:
        self._token = await self._auth.ensure()
        self._awaiting_status = None
        try:
            ws = await open_socket(self._url, timeout=self._timeout)
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise translate_ws_error(exc) from exc
        try:
            await self._send(ws, "HELLO", header="chargeflux")
            await self._send(ws, "GET_CHARGE_POINTS")
            await self._consume(ws, once)
        except (WebSocketException, OSError) as exc:
            raise translate_ws_error(exc) from exc
        finally:
            await ws.close()

    async def _consume(self, ws: ClientConnection, once: bool) -> None:
        validate = DATA_MESSAGE.validate_json
        on_data = self._on_data
        pending = self._pending
        async for raw in ws:
            try:
                message = validate(raw)
            except ValidationError as exc:
                self._on_other(raw, exc)
                if self._outgoing:
                    await self._send_requests(ws)
                    self.backoff.connected()
                if once and self._snapshot_complete():
                    return
                continue
            on_data(message)
            if once:
                self._snapshot_saw(message)
                if self._snapshot_complete():
                    return
            if len(pending) > _MAX_PENDING:
                await asyncio.wait(list(pending), return_when=asyncio.FIRST_COMPLETED)

    def _snapshot_saw(self, message: Any) -> None:
        if self._awaiting_status is None:
            return
        if message["object"] == "CH_STATUS":
            self._awaiting_status.discard(message["evse_id"])
        elif message["object"] == "GRID_STATUS":
            self._awaiting_grids -= 1

    def _snapshot_complete(self) -> bool:
        return (
            self._awaiting_status is not None
            and not self._awaiting_status
            and self._awaiting_grids <= 0
        )

    async def _send(self, ws: ClientConnection, name: str, **params: Any) -> None:
        self._ctx.counters.inc("requests")
        with contextlib.suppress(ConnectionClosed):
            await ws.send(command(name, self._token, **params))

    async def _send_requests(self, ws: ClientConnection) -> None:
        """Send the queued requests. First let the loop read what the socket holds: writing
        to a peer that already closed draws a TCP reset, which discards received but unread
        data. A closed connection is not an error here: the frames it delivered before
        closing are in the receive buffer and are read before the reader sees the close."""
        frames, self._outgoing = self._outgoing, []
        self._ctx.counters.inc("requests", len(frames))
        await asyncio.sleep(0)
        with contextlib.suppress(ConnectionClosed):
            for frame in frames:
                await ws.send(frame)

    # --- frames --------------------------------------------------------------------------

    def _on_data(self, message: Any) -> None:
        now = self._clock.time_ns()
        try:
            if message["object"] == "CH_STATUS":
                point = self._mapper.status_point(message, now)
            else:
                point = self._mapper.grid_point(message, now)
                if point is None:
                    self._malformed("no_charge_point", "grid message names no charge point", "")
                    return
        except ValueError as exc:
            self._malformed("bad_date", str(exc), str(message)[:200])
            return
        self.received += 1
        self._batch.append(point)
        if len(self._batch) >= _BATCH:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _on_other(self, raw: str | bytes, exc: ValidationError) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._malformed("not_json", "frame is not JSON", raw)
            return
        if not isinstance(message, dict):
            self._malformed("not_an_object", "frame is not a JSON object", raw)
            return
        name = message.get("object")
        if not isinstance(name, str) or not name:
            self._malformed("no_object", "frame has no 'object'", raw)
            return
        if name in _DATA_OBJECTS:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"][1:])
            self._malformed("bad_fields", f"{name} {where}: {first['msg']}", raw)
        elif name == "ERROR":
            self._on_error(message, raw)
        elif "RECEIVED" in name or "OPERATIVE" in name:
            if message.get("error"):
                self._ctx.counters.inc("errors")
                self._ctx.log.warning(
                    "bluecurrent_command_failed", object=name, error=str(message["error"])[:200]
                )
        elif name == "CHARGE_POINTS":
            self._on_charge_points(message, raw)
        elif name in _QUIET_OBJECTS or name.startswith(_QUIET_PREFIXES):
            return
        else:
            self._malformed("unknown_object", f"unknown object {name[:50]!r}", raw)

    def _on_error(self, message: dict[str, Any], raw: str | bytes) -> None:
        try:
            error = error_from_message(ErrorMessage.model_validate(message))
        except ValidationError:
            self._malformed("bad_error", "unreadable ERROR frame", raw)
            return
        if isinstance(error, RequestLimitReached | TokenExpired):
            raise error
        self._ctx.counters.inc("errors")
        self._ctx.log.error("bluecurrent_error", error=str(error))

    def _on_charge_points(self, message: dict[str, Any], raw: str | bytes) -> None:
        try:
            points = ChargePointsMessage.model_validate(message).data
        except ValidationError as exc:
            self._malformed("bad_fields", f"CHARGE_POINTS: {exc.errors()[0]['msg']}", raw)
            return
        known = [point.evse_id for point in points]
        chosen = [evse for evse in self._wanted if evse in known] if self._wanted else known
        unknown = sorted(set(self._wanted) - set(known))
        if unknown:
            self._ctx.log.warning("bluecurrent_unknown_charge_points", evse_ids=unknown)
        if self._charge_points_seen is not None:
            self._charge_points_seen(chosen)
        self._awaiting_status = set(chosen)
        self._awaiting_grids = len(chosen)
        token = self._token
        for evse_id in chosen:
            self._outgoing.append(command("GET_CH_STATUS", token, evse_id=evse_id))
            self._outgoing.append(command("GET_GRID_STATUS", token, evse_id=evse_id))
        self._ctx.log.info("bluecurrent_subscribed", charge_points=len(chosen))

    def _malformed(self, kind: str, reason: str, raw: str | bytes) -> None:
        counters = self._ctx.counters
        counters.inc("malformed_frames")
        counters.inc("errors")
        now = self._clock.monotonic()
        last, suppressed = self._logged.get(kind, (float("-inf"), 0))
        if now - last < _LOG_EVERY_S:
            self._logged[kind] = (last, suppressed + 1)
            return
        self._logged[kind] = (now, 0)
        sample = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        self._ctx.log.warning(
            "bluecurrent_malformed_frame",
            kind=kind,
            reason=reason,
            sample=sample[:200],
            suppressed=suppressed,
        )

    # --- commits -------------------------------------------------------------------------

    def _flush(self, attempt: int = 1) -> None:
        self._flush_scheduled = False
        if not self._batch:
            return
        points, self._batch = self._batch, []
        self._submit(points, attempt)

    def _submit(self, points: list[Point], attempt: int) -> None:
        try:
            future = self._ctx.emit.submit_points(points)
        except RuntimeError as exc:
            self._lost(points, exc)
            return
        self._pending[future] = (points, attempt)
        future.add_done_callback(self._committed)

    def _committed(self, future: asyncio.Future[None]) -> None:
        points, attempt = self._pending.pop(future)
        if future.cancelled():
            self._lost(points, asyncio.CancelledError())
            return
        exc = future.exception()
        if exc is None:
            return
        self._ctx.counters.inc("errors")
        if attempt >= _COMMIT_ATTEMPTS:
            self._lost(points, exc)
            return
        self._ctx.log.warning("bluecurrent_commit_retry", error=str(exc), points=len(points))
        self._submit(points, attempt + 1)

    def _lost(self, points: list[Point], exc: BaseException) -> None:
        self._ctx.counters.inc("points_dropped", len(points))
        self._ctx.log.error("bluecurrent_points_lost", error=str(exc), points=len(points))

    async def drain(self) -> None:
        """Hand over the current batch and wait until every submitted batch is committed."""
        self._flush()
        while self._pending:
            await asyncio.wait(list(self._pending))
