"""The BlueCurrent websocket protocol: connections, login, request/response.

Login is `{"command":"VALIDATE_API_TOKEN","token":T}` on a short connection, answered by
`STATUS_API_TOKEN` (`success` false: the token is invalid); the session token it returns is
sent as `"Authorization": "Token <token>"` in the JSON body of every later message, and as the
`Authorization` header of REST calls. `Auth` keeps that session token for every connection and
REST call of a collector (a reconnect reuses it) and paces logins with a `LoginLimiter`.

`BlueCurrentApi` is the small request/response client (the methods pybluecurrent documents:
account, charge cards, charge points, settings, grid status, sustainability, and through
`rest` the REST ones) used by the CLI and by the collector for setup. The push subscription
itself lives in `stream.py`.

Errors (`errors.py`, re-exported here) map onto the chargeflux family: `InvalidToken`,
`TokenExpired`, `RequestLimitReached`, `AlreadyConnected`, `ConnectionDropped`,
`CommandRejected`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from structlog.typing import FilteringBoundLogger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from collectors.bluecurrent.backoff import Clock, LoginLimiter
from collectors.bluecurrent.errors import (
    AlreadyConnected,
    CommandRejected,
    ConnectionDropped,
    InvalidToken,
    RequestLimitReached,
    TokenExpired,
    error_from_message,
    translate_ws_error,
)
from collectors.bluecurrent.models import (
    DATA_MESSAGE,
    Account,
    ChargeCard,
    ChargeCardsMessage,
    ChargePoint,
    ChargePointSettings,
    ChargePointsMessage,
    ChargePointStatus,
    ChSettingsMessage,
    Contract,
    ErrorMessage,
    Grid,
    GridStatusData,
    StatusApiToken,
    Sustainability,
    TransactionsPage,
)
from daemon.errors import DataError, SourceError, UpstreamError
from daemon.metrics import Counters

if TYPE_CHECKING:
    from collectors.bluecurrent.rest import RestClient

__all__ = [
    "AlreadyConnected",
    "Auth",
    "BlueCurrentApi",
    "CommandRejected",
    "ConnectionDropped",
    "InvalidToken",
    "RequestLimitReached",
    "TokenExpired",
    "error_from_message",
    "open_socket",
    "translate_ws_error",
]

M = TypeVar("M", bound=BaseModel)


def open_socket(url: str, *, timeout: float = 15.0, max_queue: int = 2048) -> connect:
    """A websockets `connect` (await it or use it as a context manager) tuned for bursts:
    no compression, a deep receive queue, keepalive pings."""
    return connect(
        url,
        compression=None,
        max_queue=max_queue,
        open_timeout=timeout,
        close_timeout=5,
        ping_interval=20,
        ping_timeout=20,
        max_size=2**22,
        proxy=None,
        user_agent_header="chargeflux",
    )


def command(name: str, token: str | None, **params: Any) -> str:
    """A command frame, with the `Authorization` body field when a token is given."""
    payload: dict[str, Any] = {"command": name, **params}
    if token is not None:
        payload["Authorization"] = f"Token {token}"
    return json.dumps(payload)


class Auth:
    """The session token shared by a collector's connections and REST calls."""

    def __init__(
        self,
        ws_url: str,
        api_token: SecretStr,
        *,
        clock: Clock,
        limiter: LoginLimiter,
        counters: Counters,
        log: FilteringBoundLogger,
        timeout: float = 15.0,
    ) -> None:
        self._url = ws_url
        self._api_token = api_token
        self._clock = clock
        self._limiter = limiter
        self._counters = counters
        self._log = log
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self.token: str | None = None
        self.customer_id: str | None = None
        self.invalid: str | None = None
        self.logins = 0

    async def ensure(self) -> str:
        """The session token, logging in (paced) when there is none."""
        if self.invalid:
            raise InvalidToken(self.invalid)
        async with self._lock:
            if self.token is not None:
                return self.token
            if self.invalid:
                raise InvalidToken(self.invalid)
            waited = await self._limiter.acquire()
            if waited:
                self._log.warning("bluecurrent_login_paced", waited_s=round(waited, 1))
            self.token = await self._validate()
            return self.token

    def forget(self, token: str | None = None) -> None:
        """Drop the session token (when the server refused it) so the next call logs in."""
        if token is None or token == self.token:
            self.token = None

    async def _validate(self) -> str:
        self.logins += 1
        self._counters.inc("requests")
        try:
            async with open_socket(self._url, timeout=self._timeout) as ws:
                secret = self._api_token.get_secret_value()
                await ws.send(json.dumps({"command": "VALIDATE_API_TOKEN", "token": secret}))
                async with asyncio.timeout(self._timeout):
                    answer = await _read_until(ws, "STATUS_API_TOKEN", at_login=True)
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise translate_ws_error(exc) from exc
        try:
            status = StatusApiToken.model_validate(answer)
        except ValidationError as exc:
            raise DataError(f"unreadable STATUS_API_TOKEN: {exc.errors()[0]['msg']}") from exc
        if not status.success or not status.token:
            self.invalid = "BlueCurrent refused the API token (STATUS_API_TOKEN success false)"
            raise InvalidToken(self.invalid)
        self.customer_id = None if status.customer_id is None else str(status.customer_id)
        self._log.info("bluecurrent_logged_in", customer_id=self.customer_id)
        return status.token

    def mark_invalid(self, reason: str) -> None:
        self.invalid = reason
        self.token = None


async def _read_until(ws: ClientConnection, wanted: str, *, at_login: bool = False) -> dict:
    """Read frames until one whose `object` is `wanted`; ERROR frames raise."""
    while True:
        raw = await ws.recv()
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("object") == "ERROR":
            raise error_from_message(ErrorMessage.model_validate(message), at_login=at_login)
        if message.get("object") == wanted:
            return message


class BlueCurrentApi:
    """Request/response client over one websocket (plus `rest`), for setup and the CLI.

    Use as `async with BlueCurrentApi(auth, ws_url, rest) as api: await api.get_account()`.
    Requests are answered in order per object name; an ERROR fails the waiting requests.
    """

    def __init__(
        self, auth: Auth, ws_url: str, rest: RestClient | None = None, *, timeout: float = 15.0
    ) -> None:
        self.auth = auth
        self.rest = rest
        self._url = ws_url
        self._timeout = timeout
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, list[tuple[str, asyncio.Future[dict]]]] = {}

    async def __aenter__(self) -> BlueCurrentApi:
        token = await self.auth.ensure()
        try:
            self._ws = await open_socket(self._url, timeout=self._timeout)
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise translate_ws_error(exc) from exc
        self._reader = asyncio.create_task(self._read(), name="bluecurrent-api-reader")
        await self._ws.send(command("HELLO", token, header="chargeflux"))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()

    async def _read(self) -> None:
        assert self._ws is not None
        failure: SourceError = ConnectionDropped("connection closed")
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except (WebSocketException, OSError) as exc:
            failure = translate_ws_error(exc)
        for waiting in self._waiters.values():
            for _, future in waiting:
                if not future.done():
                    future.set_exception(failure)

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        name = str(message.get("object", ""))
        if name == "ERROR":
            try:
                error = error_from_message(ErrorMessage.model_validate(message))
            except ValidationError:
                error = DataError(f"unreadable ERROR frame: {str(message)[:200]}")
            for waiting in self._waiters.values():
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(error)
                waiting.clear()
            return
        waiting = self._waiters.get(name)
        if not waiting:
            return
        data = message.get("data")
        evse_id = message.get("evse_id") or (data.get("evse_id") if isinstance(data, dict) else "")
        chosen = next((i for i, (evse, _) in enumerate(waiting) if evse == evse_id), 0)
        _, future = waiting.pop(chosen)
        if not future.done():
            future.set_result(dict(message))

    async def request(self, name: str, answer: str, *, evse_id: str = "", **params: Any) -> dict:
        """Send command `name` and wait for the next `answer` object (for `evse_id`).
        A refused session token (ERROR 1) is dropped and the request sent once more after
        a new login."""
        if evse_id:
            params["evse_id"] = evse_id
        for attempt in range(2):
            token = await self.auth.ensure()
            try:
                return await self._exchange(command(name, token, **params), answer, evse_id)
            except TokenExpired:
                self.auth.forget(token)
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, frame: str, answer: str, evse_id: str) -> dict:
        assert self._ws is not None, "use BlueCurrentApi as an async context manager"
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(answer, []).append((evse_id, future))
        try:
            await self._ws.send(frame)
            async with asyncio.timeout(self._timeout):
                return await future
        except (WebSocketException, OSError) as exc:
            raise translate_ws_error(exc) from exc
        except TimeoutError as exc:
            raise UpstreamError(f"no {answer} within {self._timeout:g} s") from exc

    async def _model(self, model: type[M], name: str, answer: str, **params: Any) -> M:
        message = await self.request(name, answer, **params)
        try:
            return model.model_validate(message)
        except ValidationError as exc:
            raise DataError(f"unreadable {answer}: {exc.errors()[0]['msg']}") from exc

    async def get_account(self) -> Account:
        return await self._model(Account, "GET_ACCOUNT", "ACCOUNT")

    async def get_charge_cards(self) -> list[ChargeCard]:
        found = await self._model(ChargeCardsMessage, "GET_CHARGE_CARDS", "CHARGE_CARDS", limit=100)
        return found.cards

    async def get_charge_points(self) -> list[ChargePoint]:
        found = await self._model(ChargePointsMessage, "GET_CHARGE_POINTS", "CHARGE_POINTS")
        return found.data

    async def get_charge_point_settings(self, evse_id: str) -> ChargePointSettings:
        found = await self._model(
            ChSettingsMessage, "GET_CH_SETTINGS", "CH_SETTINGS", evse_id=evse_id
        )
        return found.data

    async def get_status(self, evse_id: str) -> dict[str, Any]:
        """The `CH_STATUS` answer of one charge point (raw, validated by the caller)."""
        return await self.request("GET_CH_STATUS", "CH_STATUS", evse_id=evse_id)

    async def get_grid_status(self, evse_id: str) -> GridStatusData:
        message = await self.request("GET_GRID_STATUS", "GRID_STATUS", evse_id=evse_id)
        try:
            return DATA_MESSAGE.validate_python(message)["data"]  # type: ignore[typeddict-item]
        except ValidationError as exc:
            raise DataError(f"unreadable GRID_STATUS: {exc.errors()[0]['msg']}") from exc

    # The REST half of pybluecurrent's methods (`rest` must be given).

    async def get_charge_point_status(self, evse_id: str) -> ChargePointStatus:
        return await self._rest().charge_point_status(evse_id)

    async def get_contracts(self) -> list[Contract]:
        return await self._rest().contracts()

    async def get_grids(self) -> list[Grid]:
        return await self._rest().grids()

    async def get_transactions(
        self, evse_id: str, newest_first: bool = True, page: int = 1
    ) -> TransactionsPage:
        return await self._rest().transactions(evse_id, page=page, newest_first=newest_first)

    def iterate_transactions(
        self, evse_id: str, newest_first: bool = True
    ) -> AsyncIterator[TransactionsPage]:
        """Pages of transactions, following `next_page`."""
        return self._rest().iterate_transactions(evse_id, newest_first=newest_first)

    def _rest(self) -> RestClient:
        if self.rest is None:
            raise RuntimeError("BlueCurrentApi was built without a REST client")
        return self.rest

    async def get_sustainability_status(self) -> Sustainability:
        return await self._model(
            Sustainability, "GET_SUSTAINABILITY_STATUS", "SUSTAINABILITY_STATUS"
        )
