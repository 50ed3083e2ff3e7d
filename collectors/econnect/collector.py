"""The eConnect collector: a scheduled full pull of the station master data.

Every run (weekly by default, `schedule` is a cron expression) pulls all pages, writes one
`econnect_station` point per valid station, all stamped with the same poll time, commits
them together with the `last_poll` checkpoint, then replaces the snapshot file the
`report stations` command reads. Bad records are counted (`bad_records`), logged once per
poll and kept in the snapshot; they never stop the poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from collectors.econnect.client import MasterdataClient, Pull
from collectors.econnect.config import EconnectConfig
from collectors.econnect.models import Station
from collectors.econnect.snapshot import Snapshot, save_snapshot, snapshot_path
from daemon.collector import CollectorContext, Job, PolledCollector
from daemon.points import Point

__all__ = ["MEASUREMENT", "EconnectCollector", "station_point"]

MEASUREMENT = "econnect_station"


def _tag(value: str) -> str:
    """A tag value line protocol can carry (no backslash or line break)."""
    return value.replace("\\", "/").replace("\r", " ").replace("\n", " ").strip()


def station_point(station: Station, polled_at: datetime) -> Point:
    """The `econnect_station` point of one station at poll time."""
    return Point.at(
        MEASUREMENT,
        polled_at,
        tags={
            "station": _tag(station.id),
            "model": _tag(station.model_info),
            "state": _tag(station.state),
            "type": _tag(station.type),
        },
        fields={"install_date": station.install_date_iso, "count": 1},
    )


class EconnectCollector(PolledCollector):
    """Pulls the station master data on a cron schedule."""

    def __init__(self, config: EconnectConfig, ctx: CollectorContext) -> None:
        self._config = config
        self._ctx = ctx
        self._client = MasterdataClient(ctx.http, config, counters=ctx.counters, log=ctx.log)

    def jobs(self) -> Sequence[Job]:
        return [
            Job(
                name="stations",
                run=self._scheduled_poll,
                cron=self._config.schedule,
                timezone=self._config.timezone,
                run_at_start=self._config.poll_at_start,
            )
        ]

    async def _scheduled_poll(self) -> None:
        await self.poll()

    async def poll(self) -> Pull:
        """One complete pull → points + checkpoint (one commit) → snapshot file."""
        polled_at = datetime.now(UTC).replace(microsecond=0)
        pull = await self._client.pull()
        parsed = pull.parsed
        points = [station_point(station, polled_at) for station in parsed.stations]
        summary = {
            "time": polled_at.isoformat(),
            "stations": len(parsed.stations),
            "bad_records": len(parsed.bad),
            "date_problems": len(parsed.date_problems),
            "pages": pull.pages,
        }
        await self._ctx.emit.points(points, checkpoint={"last_poll": summary})
        snapshot = Snapshot(polled_at, self._config.business_partner, pull.pages, parsed)
        await asyncio.to_thread(save_snapshot, snapshot_path(self._ctx.state_dir), snapshot)
        if parsed.bad:
            self._ctx.counters.inc("bad_records", len(parsed.bad))
            first = parsed.bad[0]
            self._ctx.log.warning(
                "econnect_bad_records",
                count=len(parsed.bad),
                first_page=first.page,
                first_position=first.position,
                first_problem=first.problem,
            )
        if parsed.date_problems:
            self._ctx.log.warning(
                "econnect_unreadable_install_dates",
                count=len(parsed.date_problems),
                first_station=parsed.date_problems[0].id,
            )
        if not parsed.stations:
            self._ctx.log.warning(
                "econnect_no_stations", business_partner=self._config.business_partner
            )
        self._ctx.log.info("econnect_poll_done", **summary)
        return pull
