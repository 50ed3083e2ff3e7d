"""The sink interface: where the flusher writes committed line protocol.

Sinks never buffer or retry: the outbox owns both. `write()` either returns (the server
acknowledged every line) or raises `SinkRetryable` (try the same body later), `SinkRejected`
(the data itself was refused: the flusher bisects to isolate the bad lines) or
`SinkAuthError` (credentials refused: writing stops, data stays in the outbox).
"""

from __future__ import annotations

from typing import Protocol

from daemon.points import Point

__all__ = ["Sink"]


class Sink(Protocol):
    """A point store."""

    name: str

    async def open(self) -> None:
        """Connect (and create what is missing, where configured)."""
        ...

    async def write(self, body: bytes, lines: int) -> None:
        """Write newline-separated line protocol; return only once acknowledged."""
        ...

    async def query(
        self, measurement: str, since_ns: int | None = None, limit: int | None = None
    ) -> list[Point]:
        """Points of `measurement` (newest last), for the CLI and the demo summary."""
        ...

    async def close(self) -> None: ...
