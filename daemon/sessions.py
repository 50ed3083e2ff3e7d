"""Charging sessions → points: the `charging_session` shape and the session judge seam.

`session_offset_ns` gives every session its own (series, time) in InfluxDB: two sessions on
one charge point may share a start, so the point is stamped at the start plus a deterministic
sub-second offset derived from the session id (a replay overwrites the same point).

`SessionLines` writes the `charging_session` line of an accepted session straight from its
values — the same bytes `encode(session_point_of(...))` gives (a property test holds them
equal), at a fraction of the cost; anything unusual (NaN, non-ASCII id, time out of range)
is left to the `Point` path.

`SessionJudge` is the seam between collectors' sessions and the exclusion engine: the emitter
asks it for the points (and ready lines) to write and the ledger writes to commit in the same
transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from daemon.outbox import OnCommit
from daemon.points import _TIME_MAX, _TIME_MIN, Point, _scan_series, encode, to_ns
from daemon.records import ChargingSession, SessionBatch, Sessions

__all__ = [
    "AcceptAll",
    "Judgement",
    "SessionJudge",
    "SessionLines",
    "session_offset_ns",
    "session_point",
    "session_point_of",
]


def session_offset_ns(session_id: str) -> int:
    """A stable offset in [0, 1 s) from the session id (CRC-32, not Python's salted hash:
    the same on every run and machine, and cheap enough for every session's points)."""
    return zlib.crc32(session_id.encode()) % 1_000_000_000


def session_point(session: ChargingSession, accepted: bool) -> Point:
    """The `charging_session` point of `session`."""
    return session_point_of(
        source=session.source,
        operational_unit=session.operational_unit,
        station=session.station,
        pdc=session.pdc,
        siren=session.siren,
        session_id=session.session_id,
        start_ns=to_ns(session.start),
        duration_s=(session.end - session.start).total_seconds(),
        energy_kwh=session.energy_kwh,
        max_power_kw=session.max_power_kw,
        accepted=accepted,
    )


def session_point_of(
    *,
    source: str,
    operational_unit: str,
    station: str,
    pdc: str,
    siren: str,
    session_id: str,
    start_ns: int,
    duration_s: float,
    energy_kwh: float,
    max_power_kw: float,
    accepted: bool,
) -> Point:
    """The `charging_session` point (the one definition of its shape), stamped at the start
    plus the session's offset."""
    return Point(
        "charging_session",
        {
            "source": source,
            "operational_unit": operational_unit,
            "station": station,
            "pdc": pdc,
            "siren": siren,
        },
        {
            "energy_kwh": float(energy_kwh),
            "duration_s": float(duration_s),
            "max_power_kw": float(max_power_kw),
            "session_id": session_id,
            "accepted": accepted,
        },
        start_ns + session_offset_ns(session_id),
    )


SessionTags = tuple[str, str, str, str, str]  # source, operational unit, station, pdc, siren


class SessionLines:
    """`charging_session` lines from values, with the escaped series key cached per tag set
    (one instance per producer: the cache is not shared between threads)."""

    def __init__(self) -> None:
        self._heads: dict[SessionTags, str] = {}

    def head(self, tags: SessionTags) -> str:
        """The escaped measurement and tags of a session's series."""
        head = self._heads.get(tags)
        if head is None:
            source, unit, station, pdc, siren = tags
            line = encode(
                session_point_of(
                    source=source,
                    operational_unit=unit,
                    station=station,
                    pdc=pdc,
                    siren=siren,
                    session_id="",
                    start_ns=0,
                    duration_s=0.0,
                    energy_kwh=0.0,
                    max_power_kw=0.0,
                    accepted=True,
                )
            )
            head = line[: _scan_series(line, 0)]
            if len(self._heads) >= 100_000:
                self._heads.clear()
            self._heads[tags] = head
        return head

    @staticmethod
    def accepted_lines(
        heads: Sequence[str],
        session_ids: Sequence[str],
        starts_ns: Sequence[int],
        durations_s: Sequence[float],
        energies_kwh: Sequence[float],
        max_powers_kw: Sequence[float],
        accepted: bool = True,
    ) -> tuple[list[str], list[int]]:
        """Lines of many sessions, and the indices of those left to the `Point` path. Floats
        are written as `encode` writes them (orjson's shortest round-trip form), a column at
        a time."""
        columns = [
            np.asarray(values, np.float64) for values in (energies_kwh, durations_s, max_powers_kw)
        ]
        finite = (
            np.isfinite(columns[0]) & np.isfinite(columns[1]) & np.isfinite(columns[2])
        ).tolist()
        energy, duration, power = (_float_texts(column) for column in columns)
        flag = "true" if accepted else "false"
        offset = session_offset_ns
        lines: list[str] = []
        deferred: list[int] = []
        add = lines.append
        for index, sid in enumerate(session_ids):
            if not finite[index] or not sid.isascii():
                deferred.append(index)
                continue
            time_ns = starts_ns[index] + offset(sid)
            if not _TIME_MIN <= time_ns <= _TIME_MAX:
                deferred.append(index)
                continue
            if '"' in sid or "\\" in sid:
                sid = sid.replace("\\", "\\\\").replace('"', '\\"')
            add(
                f"{heads[index]} energy_kwh={energy[index]},duration_s={duration[index]},"
                f'max_power_kw={power[index]},session_id="{sid}",accepted={flag} {time_ns}'
            )
        return lines, deferred


def _float_texts(column: npt.NDArray[np.float64]) -> list[str]:
    """Each value's text as `encode` writes a float (NaN and infinities come out as `null`:
    their rows never use it)."""
    return orjson.dumps(column.tolist())[1:-1].decode().split(",") if len(column) else []


class Judgement(NamedTuple):
    """What a judge hands the emitter: points to encode, lines already encoded, and the
    state writes to commit with them."""

    points: list[Point]
    lines: list[str]
    on_commit: OnCommit | None


class SessionJudge(Protocol):
    """Judges sessions as they arrive; returns the points to store and the state writes."""

    async def load(self) -> None:
        """Read back the state kept from earlier runs (called once, before `judge`)."""
        ...

    async def judge(self, source: str, sessions: Sessions) -> Judgement: ...


class AcceptAll:
    """A judge that accepts every session (used where no rules are configured)."""

    async def load(self) -> None:
        return None

    async def judge(self, source: str, sessions: Sessions) -> Judgement:
        if isinstance(sessions, SessionBatch):
            sessions = sessions.sessions()
        return Judgement([session_point(session, True) for session in sessions], [], None)
