"""Typed records collectors hand to the engine besides points: charging sessions.

A `ChargingSession` is what QualiCharge rows and BlueCurrent transactions become. The engine
judges it (exclusion rules), stores it as a `charging_session` point, records it in the session
ledger and feeds the monthly rollup.

`SessionBatch` is the same data in columns — the form the engine judges, the ledger stores and
a database reader produces directly: times as integer nanoseconds since the epoch (UTC,
microsecond precision), energies and powers as float64 arrays, text as lists. A source with a
few sessions builds one from `ChargingSession`s; a source with millions reads columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "NO_TIME",
    "ChargingSession",
    "SessionBatch",
    "Sessions",
    "as_batch",
    "ns_to_dt",
    "to_ns_array",
]

NO_TIME = np.iinfo(np.int64).min  # `updated_ns` of a session whose source gives no such time
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChargingSession:
    """One charging session, with the charge point facts needed to judge it.

    `start`/`end` are aware datetimes (UTC); `energy_kwh` as reported; `max_power_kw` is the
    charge point's nominal power (`puissance_nominale`), used by ENEA/ENEX. `updated_at` is the
    source's last modification time (for QualiCharge, the watermark column), when known.
    """

    source: str
    session_id: str
    pdc: str
    station: str
    operational_unit: str
    siren: str
    start: datetime
    end: datetime
    energy_kwh: float
    max_power_kw: float
    updated_at: datetime | None = None
    entity: str = ""

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def to_ns_array(moments: Sequence[datetime]) -> Ints:
    """Nanoseconds since the epoch of aware datetimes, as an int64 array (vectorised)."""
    if not moments:
        return np.empty(0, np.int64)
    index = pd.to_datetime(list(moments), utc=True).as_unit("ns")
    return np.asarray(index.asi8, dtype=np.int64)


def ns_to_dt(ns: int) -> datetime:
    """The aware UTC datetime of `ns` (truncated to microseconds)."""
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


@dataclass(frozen=True, slots=True, eq=False)
class SessionBatch:
    """Sessions of one source in columns (row `i` of every column is session `i`)."""

    source: str
    session_id: list[str]
    pdc: list[str]
    station: list[str]
    operational_unit: list[str]
    siren: list[str]
    entity: list[str]
    start_ns: Ints
    end_ns: Ints
    energy_kwh: Floats
    max_power_kw: Floats
    updated_ns: Ints  # NO_TIME where unknown
    # A dictionary code per row, when the reader has one: rows with the same code carry the
    # same pdc, station, operational unit, SIREN and entity (small non-negative integers,
    # such as the row of the charge point in a directory read once), so the engine handles
    # these five strings once per code instead of once per row.
    place_codes: Ints | None = None

    def __post_init__(self) -> None:
        size = len(self.session_id)
        for name in self._columns():
            if len(getattr(self, name)) != size:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, not {size}")
        codes = self.place_codes
        if codes is not None:
            if len(codes) != size:
                raise ValueError(f"column place_codes has {len(codes)} rows, not {size}")
            if size and int(codes.min()) < 0:
                raise ValueError("column place_codes holds a negative code")

    @staticmethod
    def _columns() -> tuple[str, ...]:
        return (
            "session_id",
            "pdc",
            "station",
            "operational_unit",
            "siren",
            "entity",
            "start_ns",
            "end_ns",
            "energy_kwh",
            "max_power_kw",
            "updated_ns",
        )

    def __len__(self) -> int:
        return len(self.session_id)

    @classmethod
    def empty(cls, source: str) -> SessionBatch:
        return cls.from_sessions(source, ())

    @classmethod
    def from_sessions(cls, source: str, sessions: Sequence[ChargingSession]) -> SessionBatch:
        """The columns of `sessions` (all of `source`)."""
        updated = [s.updated_at for s in sessions]
        known = [moment for moment in updated if moment is not None]
        updated_ns = np.full(len(sessions), NO_TIME, np.int64)
        if known:
            mask = np.fromiter((moment is not None for moment in updated), bool, len(updated))
            updated_ns[mask] = to_ns_array(known)
        return cls(
            source=source,
            session_id=[s.session_id for s in sessions],
            pdc=[s.pdc for s in sessions],
            station=[s.station for s in sessions],
            operational_unit=[s.operational_unit for s in sessions],
            siren=[s.siren for s in sessions],
            entity=[s.entity for s in sessions],
            start_ns=to_ns_array([s.start for s in sessions]),
            end_ns=to_ns_array([s.end for s in sessions]),
            energy_kwh=np.fromiter((s.energy_kwh for s in sessions), np.float64, len(sessions)),
            max_power_kw=np.fromiter((s.max_power_kw for s in sessions), np.float64, len(sessions)),
            updated_ns=updated_ns,
        )

    def session(self, index: int) -> ChargingSession:
        """Row `index` as a `ChargingSession`."""
        updated = int(self.updated_ns[index])
        return ChargingSession(
            source=self.source,
            session_id=self.session_id[index],
            pdc=self.pdc[index],
            station=self.station[index],
            operational_unit=self.operational_unit[index],
            siren=self.siren[index],
            start=ns_to_dt(self.start_ns[index]),
            end=ns_to_dt(self.end_ns[index]),
            energy_kwh=float(self.energy_kwh[index]),
            max_power_kw=float(self.max_power_kw[index]),
            updated_at=None if updated == NO_TIME else ns_to_dt(updated),
            entity=self.entity[index],
        )

    def sessions(self) -> list[ChargingSession]:
        """Every row as a `ChargingSession`."""
        return [self.session(index) for index in range(len(self))]

    def take(self, indices: Sequence[int] | npt.NDArray[np.intp]) -> SessionBatch:
        """The rows at `indices`, in that order."""
        picks = np.asarray(indices, dtype=np.intp)
        listed = picks.tolist()

        def pick(values: list[str]) -> list[str]:
            return [values[index] for index in listed]

        return SessionBatch(
            source=self.source,
            session_id=pick(self.session_id),
            pdc=pick(self.pdc),
            station=pick(self.station),
            operational_unit=pick(self.operational_unit),
            siren=pick(self.siren),
            entity=pick(self.entity),
            start_ns=self.start_ns[picks],
            end_ns=self.end_ns[picks],
            energy_kwh=self.energy_kwh[picks],
            max_power_kw=self.max_power_kw[picks],
            updated_ns=self.updated_ns[picks],
            place_codes=None if self.place_codes is None else self.place_codes[picks],
        )


Sessions = SessionBatch | Sequence[ChargingSession]  # what a judge accepts


def as_batch(source: str, sessions: Sessions) -> SessionBatch:
    """`sessions` in columns (a batch is returned as it is)."""
    if isinstance(sessions, SessionBatch):
        return sessions
    return SessionBatch.from_sessions(source, sessions)
