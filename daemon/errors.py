"""The chargeflux exception family.

    ChargefluxError
    ├── ConfigError            invalid or missing configuration (names the key and the file)
    ├── SourceError            an external source misbehaved
    │   ├── AuthError          credentials refused or expired beyond refresh (401/403)
    │   ├── QuotaError         rate limited (429 and friends); carries `retry_after` seconds
    │   ├── UpstreamError      the source failed (5xx, timeout, connection refused): retryable
    │   └── DataError          the source answered something we cannot read (bad JSON, types)
    └── SinkError              the point store refused or failed a write
        ├── SinkRetryable      try again later (5xx, timeout, down); may carry `retry_after`
        ├── SinkRejected       the server rejected the data itself (400): never retried as is
        └── SinkAuthError      401/403: the sink stops, the data stays in the outbox

Messages never contain secrets: clients build them from status codes and server reasons only.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ChargefluxError",
    "ConfigError",
    "DataError",
    "QuotaError",
    "SinkAuthError",
    "SinkError",
    "SinkRejected",
    "SinkRetryable",
    "SourceError",
    "UpstreamError",
]


class ChargefluxError(Exception):
    """Base of every error chargeflux raises on purpose."""


class ConfigError(ChargefluxError):
    """The configuration is invalid; the message names the file and the offending keys."""


class SourceError(ChargefluxError):
    """An external source failed or answered something unusable."""


class AuthError(SourceError):
    """Credentials were refused (invalid token, expired consent, 401/403)."""


class QuotaError(SourceError):
    """The source rate-limited us; wait `retry_after` seconds (None: unknown) before retrying."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(SourceError):
    """A transient failure of the source (5xx, timeout, refused connection)."""


class DataError(SourceError):
    """The source's answer could not be parsed or validated."""


class SinkError(ChargefluxError):
    """The point store failed a write."""


class SinkRetryable(SinkError):
    """The write may succeed later; `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SinkRejected(SinkError):
    """The server refused the data itself (bad line, field type conflict)."""


class SinkAuthError(SinkError):
    """The server refused our credentials; writing stops until the config is fixed."""
