"""Response shapes → `MeterSeries`, and Europe/Paris local time → UTC.

Conversion rules (the contract of `enedis_*` timestamps):

- load curves: `d` is the local (Europe/Paris) END of the interval and `p` its length; the
  sample starts at `UTC(d) - p`. On the fall-back day a local time between 02:00 and 03:00
  occurs twice: the first occurrence is the summer-time instant (fold 0), the second the
  winter-time one (fold 1). Precisely: an ambiguous time is the earlier instant unless a
  previous point of the same series already ends at or after it. Points are in time order,
  as Enedis sends them; both values of the repeated hour are kept. A local time that does
  not exist (inside the spring-forward gap) cannot be placed and is dropped with a count.
- daily values: the local day, stamped at local midnight, lasting 23, 24 or 25 hours;
- max power: the local moment of the peak (fold 0 when ambiguous), or the given offset.

Durations: ISO 8601 `PT10M`, `PT15M`, `PT30M`, `PT60M`, `PT1H`, `P1D`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collectors.enedis.config import OffPeakRange
from collectors.enedis.models import (
    Direction,
    Kind,
    MeterSeries,
    Sample,
    V2Response,
    V5Reading,
)
from daemon.errors import DataError

__all__ = [
    "PARIS",
    "day_bounds",
    "duration_s",
    "local_midnight",
    "parse_v2",
    "parse_v5",
    "period_of",
]

PARIS = ZoneInfo("Europe/Paris")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_GRANDEUR = {"consumption": "CONS", "production": "PROD"}


def duration_s(text: str | None, default: int = 1800) -> int:
    """Seconds in an ISO 8601 duration such as PT30M (default when absent)."""
    if not text:
        return default
    match = _DURATION.match(text.strip().upper())
    if not match or not any(match.groups()):
        raise DataError(f"unknown interval length {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise DataError(f"empty interval length {text!r}")
    return total


def local_midnight(day: date) -> datetime:
    """UTC instant of local (Europe/Paris) midnight starting `day`."""
    return datetime.combine(day, time(0), PARIS).astimezone(UTC)


def day_bounds(first: date, end: date) -> tuple[datetime, datetime]:
    """UTC instants of [local midnight of `first`, local midnight of `end`)."""
    return local_midnight(first), local_midnight(end)


def period_of(start: datetime, ranges: Sequence[OffPeakRange]) -> str:
    """HC when the slot's local start falls in an off-peak range, HP otherwise, BASE if none."""
    if not ranges:
        return "BASE"
    local = start.astimezone(PARIS).time()
    return "HC" if any(item.contains(local) for item in ranges) else "HP"


def _value(raw: object) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return float(raw)  # type: ignore[arg-type]


def _parse_text(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise DataError(f"unreadable date {text!r}") from exc


def _to_utc(naive: datetime, previous_end: datetime | None) -> datetime | None:
    """Local wall time → UTC, resolving the repeated hour by order (None: nonexistent)."""
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    first = naive.replace(tzinfo=PARIS, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=PARIS, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first > second:  # inside the spring-forward gap: this wall time never happened
        return None
    return first if previous_end is None or first > previous_end else second


def _curve(points: Iterable[tuple[str, object, str | None]], dropped: list[str]) -> list[Sample]:
    samples: list[Sample] = []
    previous_end: datetime | None = None
    step = 1800
    for when, raw, length in points:
        step = duration_s(length, step)
        end = _to_utc(_parse_text(when), previous_end)
        if end is None:
            dropped.append(when)
            continue
        previous_end = end
        samples.append(Sample(end - timedelta(seconds=step), step, _value(raw)))
    return samples


def _daily(points: Iterable[tuple[str, object, str | None]]) -> list[Sample]:
    samples = []
    for when, raw, _ in points:
        day = _parse_text(when).date()
        start, end = day_bounds(day, day + timedelta(days=1))
        samples.append(Sample(start, int((end - start).total_seconds()), _value(raw)))
    return samples


def _peaks(points: Iterable[tuple[str, object, str | None]]) -> list[Sample]:
    samples = []
    for when, raw, _ in points:
        moment = _to_utc(_parse_text(when), None)
        if moment is None:  # a peak stamped in the spring gap: take the summer-time reading
            moment = _parse_text(when).replace(tzinfo=PARIS, fold=1).astimezone(UTC)
        samples.append(Sample(moment, 0, _value(raw)))
    return samples


def _build(
    prm: str,
    kind: Kind,
    direction: Direction,
    unit: str,
    points: list[tuple[str, object, str | None]],
) -> tuple[MeterSeries, list[str]]:
    dropped: list[str] = []
    if kind == "load_curve":
        samples = _curve(points, dropped)
    elif kind == "daily":
        samples = _daily(points)
    else:
        samples = _peaks(points)
    return MeterSeries(prm, kind, direction, unit, samples), dropped


def parse_v2(body: V2Response, kind: Kind, direction: Direction) -> tuple[MeterSeries, list[str]]:
    """Data Connect 2026 body → series (and the dropped nonexistent local times)."""
    wanted = _GRANDEUR[direction]
    grandeurs = [g for g in body.grandeur if g.grandeurMetier.upper() == wanted]
    points = [(p.d, p.v, p.p) for g in grandeurs for p in g.points]
    unit = next((g.unite for g in grandeurs if g.unite), None) or _default_unit(kind)
    return _build(body.idPrm, kind, direction, unit, points)


def parse_v5(reading: V5Reading, kind: Kind, direction: Direction) -> tuple[MeterSeries, list[str]]:
    """v5 `meter_reading` (wrapped or flattened) → series (and dropped local times)."""
    points = [(r.date, r.value, r.interval_length) for r in reading.interval_reading]
    unit = (reading.reading_type.unit if reading.reading_type else None) or _default_unit(kind)
    return _build(reading.usage_point_id, kind, direction, unit, points)


def _default_unit(kind: Kind) -> str:
    return {"load_curve": "W", "daily": "Wh", "max_power": "VA"}[kind]
