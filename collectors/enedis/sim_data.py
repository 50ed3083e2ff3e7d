"""Synthetic meters for the Enedis simulator: the sandbox's fake clients and their data.

Values are deterministic (a hash of PRM, direction and slot start), so two runs, or two
requests for the same window, return the same numbers. Load-curve slots follow Europe/Paris
days (46 half-hours on the spring-forward day, 50 on the fall-back day); daily energy is the
sum of the day's curve and max power its highest slot (in VA, at a moment inside that slot).
Tuesdays of a meter with holes come back as nulls, its Wednesdays are missing altogether.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Meter", "Slot", "day_slots", "sandbox_meters"]

PARIS = ZoneInfo("Europe/Paris")
LINKY_START = date(2015, 12, 1)
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Meter:
    """One simulated delivery point and how it behaves."""

    prm: str
    consumption: bool = True
    production: bool = False
    load_curve: bool = True
    activation: date = LINKY_START
    holes: bool = False
    revoked: bool = False
    moved: bool = False
    self_consumption: bool = False
    step_minutes: int = 30
    subscribed_kva: float = 9.0
    label: str = ""
    overrides: dict[str, str | None] = field(default_factory=dict, hash=False, compare=False)


def sandbox_meters() -> list[Meter]:
    """The fake clients of the Enedis sandbox (seed "Enedis Sandbox API")."""
    return [
        Meter("22516914714270", label="0: full data"),
        Meter("11453290002823", activation=date(2019, 8, 27), label="1: activated 2019-08-27"),
        Meter("32320647321714", load_curve=False, label="2: no load curve"),
        Meter("12345678901234", label="3: consumption point"),
        Meter("10284856584123", consumption=False, production=True, label="3: production point"),
        Meter("42900589957123", holes=True, label="4: holes on Tuesdays and Wednesdays"),
        Meter("24880057139941", consumption=False, production=True, label="5: production only"),
        Meter(
            "12655648759651", production=True, self_consumption=True, label="6: self-consumption"
        ),
        Meter("64975835695673", label="7: three PRMs (1)"),
        Meter("63695879465986", subscribed_kva=6.0, label="7: three PRMs (2)"),
        Meter("22315546958763", subscribed_kva=12.0, label="7: three PRMs (3)"),
        Meter("26584978546985", revoked=True, label="8: consent revoked"),
    ]


def _mix(value: int) -> int:
    """splitmix64: a cheap, well-spread hash."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _unit(prm: str, salt: int, stamp: int) -> float:
    return _mix(int(prm) * 1_000_003 + salt * 7_919 + stamp) / _MASK


def _consumption(prm: str, stamp: int, hour: float) -> float:
    evening = 1800 * math.exp(-((hour - 19.5) ** 2) / 4)
    morning = 900 * math.exp(-((hour - 7.5) ** 2) / 2)
    return 250 + evening + morning + 1500 * _unit(prm, 1, stamp)


def _production(prm: str, stamp: int, hour: float) -> float:
    if not 6.5 <= hour <= 20.5:
        return 0.0
    sun = math.sin(math.pi * (hour - 6.5) / 14)
    return 3200 * sun * (0.55 + 0.45 * _unit(prm, 2, stamp))


def power(meter: Meter, direction: str, start: datetime) -> float:
    """Average power (W) of the slot starting at `start` (UTC)."""
    stamp = int(start.timestamp())
    local = start.astimezone(PARIS)
    hour = local.hour + local.minute / 60
    cons = _consumption(meter.prm, stamp, hour) if meter.consumption else 0.0
    prod = _production(meter.prm, stamp, hour) if meter.production else 0.0
    if meter.self_consumption:
        cons, prod = max(cons - prod, 0.0), max(prod - cons, 0.0)
    return round(cons if direction == "consumption" else prod)


@dataclass(frozen=True, slots=True)
class Slot:
    """One load-curve slot: UTC start, length in seconds, local end text, value (None)."""

    start: datetime
    seconds: int
    end_text: str
    value: float | None


def day_slots(meter: Meter, direction: str, day: date) -> list[Slot] | None:
    """The slots of one local day (None when the meter has a hole that day)."""
    if meter.holes and day.weekday() == 2:
        return None
    begin = datetime.combine(day, datetime.min.time(), PARIS).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), PARIS).astimezone(UTC)
    step = timedelta(minutes=meter.step_minutes)
    null_day = meter.holes and day.weekday() == 1
    slots = []
    moment = begin
    while moment < end:
        finish = moment + step
        text = finish.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
        value = None if null_day else power(meter, direction, moment)
        if text in meter.overrides:
            raw = meter.overrides[text]
            value = None if raw is None else float(raw)
        slots.append(Slot(moment, int(step.total_seconds()), text, value))
        moment = finish
    return slots


def daily_energy(slots: list[Slot]) -> float | None:
    if any(s.value is None for s in slots):
        return None
    return round(sum(s.value * s.seconds / 3600 for s in slots if s.value is not None))


def peak(meter: Meter, slots: list[Slot]) -> tuple[float, str] | None:
    """(VA, local moment text) of the day's peak."""
    valued = [s for s in slots if s.value is not None]
    if not valued or len(valued) < len(slots):
        return None
    best = max(valued, key=lambda s: s.value or 0.0)
    offset = int(_unit(meter.prm, 3, int(best.start.timestamp())) * best.seconds)
    moment = (best.start + timedelta(seconds=offset)).astimezone(PARIS)
    return round((best.value or 0.0) * 1.08), moment.strftime("%Y-%m-%d %H:%M:%S")
