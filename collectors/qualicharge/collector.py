"""The QualiCharge collector: sessions from the database, statuses from the API.

Jobs:

- `sessions` reads the sessions updated since the watermark, page by page (each page a
  `SessionBatch`, in columns), and hands each page to the session judge with the page's
  watermark as checkpoint: the judge's points, the ledger rows and the watermark commit in
  one transaction, so a restart resumes after the last committed page (nothing lost,
  nothing repeated).
- `statuses` (when `api` is configured) reads the latest statuses changed since the last
  one seen and writes `qualicharge_status` points, tagged with the station and operational
  unit of the charge point (from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError, ProgrammingError

from collectors.qualicharge.api import Status, StatusClient
from collectors.qualicharge.config import QualiChargeConfig
from collectors.qualicharge.db import SessionReader, Watermark
from daemon.collector import CollectorContext, Job, PolledCollector
from daemon.errors import DataError, UpstreamError
from daemon.points import Point

__all__ = ["QualiChargeCollector", "status_point"]


def status_point(status: Status, station: str, unit: str) -> Point:
    """The `qualicharge_status` point of one status."""
    return Point.at(
        "qualicharge_status",
        status.horodatage,
        {"operational_unit": unit, "station": station, "pdc": status.id_pdc_itinerance},
        {
            "etat_pdc": status.etat_pdc,
            "occupation_pdc": status.occupation_pdc,
            "in_service": int(status.etat_pdc == "en_service"),
            "occupied": int(status.occupation_pdc == "occupe"),
        },
    )


def _database_error(exc: Exception) -> Exception:
    """A source error naming the failure without the URL (which may hold a password)."""
    origin = getattr(exc, "orig", None) or exc
    first = str(origin).strip().splitlines()[0][:300] if str(origin).strip() else ""
    text = f"QualiCharge database: {type(origin).__name__}: {first}"
    if isinstance(exc, OperationalError) and "no such table" not in text:
        return UpstreamError(text)
    return DataError(text)


class QualiChargeCollector(PolledCollector):
    """Sessions (database) and statuses (API) of the configured operators."""

    def __init__(
        self,
        config: QualiChargeConfig,
        ctx: CollectorContext,
        *,
        db_clock: Callable[[], datetime] | None = None,
        api_clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._ctx = ctx
        self._reader = SessionReader(config, source=ctx.name, clock=db_clock)
        self._client = (
            StatusClient(ctx.http, config.api, ctx.counters, api_clock)
            if config.api is not None
            else None
        )

    def jobs(self) -> Sequence[Job]:
        jobs = [
            Job(
                "sessions",
                self.poll_sessions,
                every=timedelta(seconds=self._config.sessions_interval_s),
            )
        ]
        if self._config.api is not None:
            jobs.append(
                Job(
                    "statuses",
                    self.poll_statuses,
                    every=timedelta(seconds=self._config.api.statuses_interval_s),
                )
            )
        return jobs

    async def poll_sessions(self) -> int:
        """Read and judge every session updated since the watermark; returns how many."""
        ctx = self._ctx
        after = Watermark.from_json(await ctx.checkpoints.get("watermark"))
        began, count, pages = time.monotonic(), 0, 0
        # One page commits while the next is read and judged; commits keep their order, so
        # the watermark never runs ahead of the sessions it covers.
        committing: asyncio.Future[None] | None = None
        try:
            async with contextlib.aclosing(self._reader.pages(after)) as stream:
                async for batch, mark, rejected in stream:
                    ctx.counters.inc("requests")
                    queued = await ctx.emit.submit_sessions(
                        batch, checkpoint={"watermark": mark.to_json()}, rejected=rejected
                    )
                    if committing is not None:
                        await committing
                    committing = queued
                    ctx.counters.inc("sessions", len(batch))
                    count += len(batch)
                    pages += 1
            if committing is not None:
                await committing
        except (OperationalError, ProgrammingError, NoSuchTableError, DBAPIError) as exc:
            ctx.counters.inc("errors")
            raise _database_error(exc) from None
        finally:
            if committing is not None and not committing.done():
                await asyncio.shield(committing)  # what was judged is committed, or fails
        ctx.log.info(
            "qualicharge_sessions_polled",
            sessions=count,
            pages=pages,
            seconds=round(time.monotonic() - began, 3),
            since=after.updated_at.isoformat() if after else None,
        )
        return count

    async def poll_statuses(self) -> int:
        """Write the statuses changed since the last one seen; returns how many."""
        if self._client is None or self._config.api is None:
            return 0
        ctx, api = self._ctx, self._config.api
        try:
            directory = await self._reader.directory()
        except (OperationalError, ProgrammingError, NoSuchTableError, DBAPIError) as exc:
            ctx.counters.inc("errors")
            raise _database_error(exc) from None
        raw = await ctx.checkpoints.get("statuses_since")
        since = datetime.fromisoformat(raw) if raw else None
        statuses = await self._client.statuses(since, api.stations, api.pdcs)
        explicit = bool(api.stations or api.pdcs)
        points = []
        latest = since
        for status in statuses:
            place = directory.get(status.id_pdc_itinerance)
            if place is None and not explicit:
                continue  # another operator's charge point the account may also read
            station, unit = place or ("", status.id_pdc_itinerance[:5])
            points.append(status_point(status, station, unit))
            if latest is None or status.horodatage > latest:
                latest = status.horodatage
        checkpoint = {"statuses_since": latest.isoformat()} if latest is not None else None
        await ctx.emit.points(points, checkpoint=checkpoint)
        ctx.log.info("qualicharge_statuses_polled", statuses=len(points), received=len(statuses))
        return len(points)

    async def close(self) -> None:
        await self._reader.close()
