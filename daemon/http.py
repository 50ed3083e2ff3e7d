"""The HTTP choke point every collector's client goes through.

`request_json()` sends one request with the shared `aiohttp.ClientSession` and maps what
comes back onto the exception family: 401/403 → `AuthError`, 429 (and 503 with Retry-After)
→ `QuotaError` carrying the wait, other 5xx / timeouts / refused connections →
`UpstreamError`, unparsable JSON or a body that fails its pydantic model → `DataError`.
`with_retries()` retries transient failures with jittered exponential backoff (tenacity),
honouring a server's Retry-After. Error messages carry status and server reason, never
request headers or credentials.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from daemon.errors import AuthError, DataError, QuotaError, UpstreamError

__all__ = ["parse_retry_after", "request_json", "with_retries"]

T = TypeVar("T")
M = TypeVar("M")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


async def request_json(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    model: type[M] | TypeAdapter[M] | None = None,
    timeout: float = 30.0,
    error_reason: Callable[[int, Any], str] | None = None,
    **kwargs: Any,
) -> M | Any:
    """One request; the JSON body validated against `model` (a pydantic model or adapter).

    `error_reason(status, body)` may turn a source's error body into a message (and raise a
    more specific error itself). 2xx with an empty body returns None."""
    try:
        async with http.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
        ) as response:
            text = await response.text()
            status = response.status
            headers: Mapping[str, str] = response.headers
    except TimeoutError as exc:
        raise UpstreamError(f"{method} {_path(url)}: timed out after {timeout:g} s") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"{method} {_path(url)}: {type(exc).__name__}: {exc}") from exc
    body: Any = None
    if text:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            if status < 400:
                raise DataError(
                    f"{method} {_path(url)}: answer is not JSON ({exc.msg}): {text[:200]!r}"
                ) from exc
            body = text[:500]
    if status >= 400:
        reason = error_reason(status, body) if error_reason else _default_reason(body)
        message = f"{method} {_path(url)}: HTTP {status}: {reason}"
        if status in (401, 403):
            raise AuthError(message)
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if status == 429 or (status == 503 and retry_after is not None):
            raise QuotaError(message, retry_after)
        if status >= 500:
            raise UpstreamError(message)
        raise DataError(message)
    if model is None or body is None:
        return body
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(body)
        assert issubclass(model, BaseModel)
        return model.model_validate(body)
    except ValidationError as exc:
        raise DataError(f"{method} {_path(url)}: unexpected answer: {_summary(exc)}") from exc


def _path(url: str) -> str:
    """The URL without its query string (queries may carry identifiers, never print them)."""
    return url.split("?", 1)[0]


def _default_reason(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error_description", "message", "detail", "error"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300] if body else "no body"


def _summary(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{exc.error_count()} error(s), first at {where or '<root>'}: {first['msg']}"


def _wait(max_wait: float) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=1, max=max_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, QuotaError) and exc.retry_after is not None:
            return exc.retry_after
        return jitter(state)

    return wait


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    max_wait: float = 60.0,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Await `call()`, retrying `UpstreamError`/`QuotaError` with jittered backoff."""

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome and state.outcome.exception():
            on_retry(state.outcome.exception())  # type: ignore[arg-type]

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((UpstreamError, QuotaError)),
        stop=stop_after_attempt(attempts),
        wait=_wait(max_wait),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover
