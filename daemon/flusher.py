"""The flusher: drains the outbox into the sink.

It waits until a batch is full or the flush interval passes, reads the oldest committed
chunks, writes them and deletes them once acknowledged, prefetching the next batch while a
write is in flight. Failures:

- `SinkRetryable`: the same batch again after jittered exponential backoff, or exactly the
  server's Retry-After; logged once when writes start failing and once on recovery.
- `SinkRejected` (400): the batch is bisected to isolate the lines the server refuses; those
  go to the dead-letter table with the server's reason, the rest is written (writes are
  idempotent, so re-sending accepted halves is harmless). Never an endless retry.
- `SinkAuthError` (401/403): writing stops with a clear error; data stays in the outbox until
  the config is fixed and reloaded (SIGHUP) or the daemon restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NamedTuple

import structlog

from daemon.backoff import Backoff
from daemon.config import OutboxConfig
from daemon.errors import SinkAuthError, SinkRejected, SinkRetryable
from daemon.metrics import Counters
from daemon.outbox import Batch, Outbox
from daemon.points import split_lines
from daemon.sinks.base import Sink

__all__ = ["Flusher"]

# Written batches not yet deleted, at most (a crash replays them: see `flush`), and chunk ids
# deleted by one acknowledgement, at most.
_UNACKED_BATCHES = 64
_ACK_IDS = 4096


class Flusher:
    """Moves committed points from the outbox to the sink."""

    def __init__(
        self, outbox: Outbox, sink: Sink, config: OutboxConfig, counters: Counters
    ) -> None:
        self._outbox = outbox
        self._sink = sink
        self._config = config
        self._counters = counters
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s)
        self._log = structlog.get_logger("chargeflux.flusher")
        self._failing = False
        self._stop = asyncio.Event()
        self._resumed = asyncio.Event()
        self.blocked_reason: str | None = None

    @property
    def sink(self) -> Sink:
        return self._sink

    def replace_sink(self, sink: Sink) -> None:
        """Use a new sink (after a config reload); unblocks a flusher stopped on auth."""
        self._sink = sink
        self.blocked_reason = None
        self._resumed.set()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Flush until `stop()`; the caller drains what is left with `drain()`."""
        while not self._stop.is_set():
            if self.blocked_reason is not None:  # until replace_sink(), not a busy loop
                await _first(self._resumed, self._stop)
                continue
            await self._wait_for_batch()
            if self._stop.is_set():
                return
            await self.flush(stop_on=self._stop)

    async def _wait_for_batch(self) -> None:
        """Wait until a full batch is committed or `flush_interval_s` has passed (or stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.flush_interval_s
        while self._outbox.depth < self._config.batch_size and not self._stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._outbox.committed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(self._outbox.committed, self._stop), remaining)

    async def flush(self, stop_on: asyncio.Event | None = None) -> bool:
        """Write batches until the outbox is empty (True) or writing is blocked (False).

        The sink is kept busy: the next batch is read (on the state database's reader, so
        never behind a long commit) while one is written, and written batches are
        acknowledged (deleted) in the background while the next ones are written: one
        deletion at a time, covering every batch written since the previous one. One write is
        in flight at a time, in outbox order; at most `_UNACKED_BATCHES` written batches wait
        for their deletion, and every one is deleted when this returns. A crash between a
        write and its deletion replays those batches, which the sink overwrites (same series
        and timestamps).
        """
        written: list[_Written] = []
        acking: asyncio.Task[None] | None = None
        try:
            batch = await self._outbox.read_batch(self._config.batch_size)
            while batch is not None:
                prefetch = asyncio.create_task(
                    self._outbox.read_batch(self._config.batch_size, after_id=batch.last_id)
                )
                try:
                    dead = await self._deliver(batch, stop_on)
                except BaseException:
                    prefetch.cancel()
                    raise
                if dead is None:
                    prefetch.cancel()
                    return False
                written.append(_Written(batch.ids, batch.lines, dead))
                if acking is not None and (acking.done() or len(written) >= _UNACKED_BATCHES):
                    await acking
                    acking = None
                if acking is None:
                    acking = asyncio.create_task(self._ack(_take(written)))
                batch = await prefetch
            return True
        finally:
            if acking is not None:
                await acking
            while written:
                await self._ack(_take(written))

    async def drain(self, timeout: float | None) -> bool:
        """Flush everything committed, within `timeout` seconds; True when empty."""
        try:
            async with asyncio.timeout(timeout):
                while self._outbox.depth > 0:
                    if not await self.flush():
                        return False
        except TimeoutError:
            self._log.warning("drain_timeout", remaining=self._outbox.depth, timeout_s=timeout)
            return False
        return True

    async def _deliver(
        self, batch: Batch, stop_on: asyncio.Event | None
    ) -> list[tuple[str, str]] | None:
        """Write `batch` until the sink takes it: the lines it refused, or None when writing
        stopped (blocked, or `stop_on` fired during a retry wait)."""
        while True:
            if self.blocked_reason is not None:
                return None
            try:
                dead = await self._write(batch.body, batch.lines)
            except SinkAuthError as exc:
                self.blocked_reason = str(exc)
                self._resumed.clear()
                self._log.error(
                    "sink_stopped_auth",
                    sink=self._sink.name,
                    error=str(exc),
                    outbox_depth=self._outbox.depth,
                    hint="fix the credentials and reload (SIGHUP); buffered data is kept",
                )
                return None
            except Exception as exc:  # SinkRetryable, or an unexpected sink failure: retry
                self._counters.inc("retries")
                retry_after = exc.retry_after if isinstance(exc, SinkRetryable) else None
                delay = retry_after if retry_after is not None else self._backoff.next()
                if not self._failing:
                    self._failing = True
                    self._log.error(
                        "sink_write_failing",
                        sink=self._sink.name,
                        error=str(exc),
                        retry_in_s=round(delay, 2),
                        outbox_depth=self._outbox.depth,
                    )
                if await _wait(stop_on, delay):
                    return None
                continue
            self._backoff.reset()
            if self._failing:
                self._failing = False
                self._log.info("sink_write_recovered", sink=self._sink.name)
            return dead

    async def _ack(self, batches: list[_Written]) -> None:
        dead = [pair for batch in batches for pair in batch.dead]
        await self._outbox.ack([chunk for batch in batches for chunk in batch.ids], dead)
        self._counters.inc("points_written", sum(batch.lines for batch in batches) - len(dead))

    async def _write(self, body: bytes, lines: int) -> list[tuple[str, str]]:
        """Write `body`; on rejection bisect and return the refused (line, reason) pairs."""
        try:
            await self._sink.write(body, lines)
            return []
        except SinkRejected as exc:
            parts = split_lines(body.decode())
            if len(parts) == 1:
                self._counters.inc("points_dropped")
                self._log.error("point_dead_lettered", reason=str(exc), line=parts[0][:300])
                return [(parts[0], str(exc))]
            half = len(parts) // 2
            first, second = parts[:half], parts[half:]
            return [
                *await self._write("\n".join(first).encode(), len(first)),
                *await self._write("\n".join(second).encode(), len(second)),
            ]


class _Written(NamedTuple):
    """A batch the sink took: its chunk ids, line count and the lines it refused."""

    ids: tuple[int, ...]
    lines: int
    dead: list[tuple[str, str]]


def _take(written: list[_Written]) -> list[_Written]:
    """Remove and return the oldest written batches, up to `_ACK_IDS` chunk ids (at least one
    batch)."""
    count, ids = 0, 0
    for batch in written:
        if count and ids + len(batch.ids) > _ACK_IDS:
            break
        count += 1
        ids += len(batch.ids)
    taken = written[:count]
    del written[:count]
    return taken


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


async def _wait(stop_on: asyncio.Event | None, delay: float) -> bool:
    """Sleep `delay` seconds; True if `stop_on` fired first."""
    if stop_on is None:
        await asyncio.sleep(delay)
        return False
    try:
        await asyncio.wait_for(stop_on.wait(), delay)
    except TimeoutError:
        return False
    return True
