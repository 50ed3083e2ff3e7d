"""Typed records collectors hand to the engine besides points: charging sessions.

A `ChargingSession` is what QualiCharge rows and BlueCurrent transactions become. The engine
judges it (exclusion rules), stores it as a `charging_session` point, records it in the session
ledger and feeds the monthly rollup. Slotted dataclass: the engine handles millions of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["ChargingSession"]


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
