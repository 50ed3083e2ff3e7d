"""structlog set-up: an event name plus key/values, JSON when not on a TTY.

`configure_logging()` also installs a redaction processor fed with every resolved secret of
the config, so a secret that slips into an exception text or a URL is masked before output.
Records of the standard `logging` module (APScheduler, asyncio, aiohttp) go through the same
renderer and redactor, so stderr holds one format only (one JSON object per line off a TTY).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = ["Redactor", "configure_logging"]

MASK = "**********"


class Redactor:
    """A structlog processor replacing known secret values anywhere in an event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {key: self.redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact(item) for item in value)
        # anything else (an exception, a URL object) is rendered as text: redact that text
        return self.redact(str(value))

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        if not self._secrets:
            return event
        return {key: self.redact(value) for key, value in event.items()}


def configure_logging(
    level: str = "info", fmt: str = "auto", secrets: Iterable[str] = (), stream: Any = None
) -> None:
    """Configure structlog for the process (console on a TTY, JSON otherwise)."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    redactor = Redactor(secrets)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redactor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    # libraries are chatty at INFO (APScheduler logs every run): their warnings and errors only
    root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
