"""The BlueCurrent error family and how protocol failures map onto it.

AuthError
├── InvalidToken          the API token was refused: fix the config
└── TokenExpired          the session token was refused (ERROR 1): log in again
QuotaError
└── RequestLimitReached   ERROR 42, close 4001, handshake rejected: wait for 00:00:30
UpstreamError
├── AlreadyConnected      handshake rejected with "Already connected"
└── ConnectionDropped     closed, reset, refused, timed out: reconnect with backoff
SourceError
└── CommandRejected       ERROR 0 (unknown command), 2 (not authorized), 9, others
"""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed, InvalidStatus

from collectors.bluecurrent.models import ErrorMessage
from daemon.errors import AuthError, QuotaError, SourceError, UpstreamError

__all__ = [
    "LIMIT_CLOSE_CODE",
    "REJECT_HEADER",
    "AlreadyConnected",
    "CommandRejected",
    "ConnectionDropped",
    "InvalidToken",
    "RequestLimitReached",
    "TokenExpired",
    "error_from_message",
    "translate_ws_error",
]

LIMIT_CLOSE_CODE = 4001
REJECT_HEADER = "x-websocket-reject-reason"


class InvalidToken(AuthError):
    """The API token was refused (`success` false, or ERROR 1 at login): fix the config."""


class TokenExpired(AuthError):
    """The session token was refused (ERROR 1) after a successful login: log in again."""


class RequestLimitReached(QuotaError):
    """ERROR 42, close code 4001 or a handshake rejected for the request limit."""


class AlreadyConnected(UpstreamError):
    """The handshake was rejected with "Already connected"."""


class ConnectionDropped(UpstreamError):
    """The websocket closed or failed; reconnect with backoff."""


class CommandRejected(SourceError):
    """ERROR 0 (unknown command), 2 (not authorized), 9 (unknown) and other codes."""

    def __init__(self, message: str, code: int | str) -> None:
        super().__init__(message)
        self.code = code


_ERROR_NAMES = {0: "unknown command", 1: "invalid token", 2: "not authorized", 9: "unknown error"}


def error_from_message(error: ErrorMessage, *, at_login: bool = False) -> SourceError:
    """The exception for an ERROR message."""
    code = error.error
    reason = error.message or _ERROR_NAMES.get(code, "error") if isinstance(code, int) else code
    text = f"BlueCurrent ERROR {code}: {reason}"
    if code == 42:
        return RequestLimitReached(text)
    if code == 1:
        return InvalidToken(text) if at_login else TokenExpired(text)
    return CommandRejected(text, code)


def translate_ws_error(exc: BaseException) -> SourceError:
    """Map a websockets/OS failure onto the error family (reject reasons, close 4001)."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, InvalidStatus):
        reason = exc.response.headers.get(REJECT_HEADER) or ""
        if "Request limit reached" in reason:
            return RequestLimitReached(f"handshake rejected: {reason}")
        if "Already connected" in reason:
            return AlreadyConnected(f"handshake rejected: {reason}")
        return ConnectionDropped(f"handshake rejected with HTTP {exc.response.status_code}")
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code == LIMIT_CLOSE_CODE:
            return RequestLimitReached("connection closed with code 4001 (request limit)")
        return ConnectionDropped(f"connection closed (code {code or 1006})")
    if isinstance(exc, TimeoutError):
        return ConnectionDropped("timed out")
    return ConnectionDropped(f"{type(exc).__name__}: {exc}")
