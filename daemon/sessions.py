"""Charging sessions → points: the `charging_session` shape and the session judge seam.

`session_offset_ns` gives every session its own (series, time) in InfluxDB: two sessions on
one charge point may share a start, so the point is stamped at the start plus a deterministic
sub-second offset derived from the session id (a replay overwrites the same point).

`SessionJudge` is the seam between collectors' sessions and the exclusion engine: the emitter
asks it for the points to write and the ledger writes to commit in the same transaction.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from daemon.outbox import OnCommit
from daemon.points import Point, to_ns
from daemon.records import ChargingSession, SessionBatch, Sessions

__all__ = ["AcceptAll", "SessionJudge", "session_offset_ns", "session_point"]


def session_offset_ns(session_id: str) -> int:
    """A stable offset in [0, 1 s) from the session id (CRC-32, not Python's salted hash:
    the same on every run and machine, and cheap enough for every session's points)."""
    return zlib.crc32(session_id.encode()) % 1_000_000_000


def session_point(session: ChargingSession, accepted: bool) -> Point:
    """The `charging_session` point of `session`."""
    start = session.start
    sid = session.session_id
    return Point(
        "charging_session",
        {
            "source": session.source,
            "operational_unit": session.operational_unit,
            "station": session.station,
            "pdc": session.pdc,
            "siren": session.siren,
        },
        {
            "energy_kwh": float(session.energy_kwh),
            "duration_s": (session.end - start).total_seconds(),
            "max_power_kw": float(session.max_power_kw),
            "session_id": sid,
            "accepted": accepted,
        },
        to_ns(start) + zlib.crc32(sid.encode()) % 1_000_000_000,  # session_offset_ns, inlined
    )


class SessionJudge(Protocol):
    """Judges sessions as they arrive; returns the points to store and the state writes."""

    async def load(self) -> None:
        """Read back the state kept from earlier runs (called once, before `judge`)."""
        ...

    async def judge(
        self, source: str, sessions: Sessions
    ) -> tuple[list[Point], OnCommit | None]: ...


class AcceptAll:
    """A judge that accepts every session (used where no rules are configured)."""

    async def load(self) -> None:
        return None

    async def judge(self, source: str, sessions: Sessions) -> tuple[list[Point], OnCommit | None]:
        if isinstance(sessions, SessionBatch):
            sessions = sessions.sessions()
        return [session_point(session, True) for session in sessions], None
