"""A fetched window → `enedis_*` points and series-check anomalies.

Measurements (the InfluxDB contract in DESIGN.md):

- `enedis_load_curve` tags prm, direction, period (HC/HP/BASE); fields power_w, energy_wh
  (= power_w x interval_s / 3600), interval_s; time = UTC start of the interval;
- `enedis_daily` tags prm, direction; field energy_wh; time = local midnight of the day;
- `enedis_max_power` tag prm; field power_va; time = the moment of the peak.

Only samples inside the requested window are kept, so adjacent windows never write the same
interval twice. Anomalies of different streams of one PRM get distinct nanosecond offsets so
they never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from collectors.enedis.config import OffPeakRange
from collectors.enedis.models import MeterSeries, Sample
from collectors.enedis.parsing import PARIS, day_bounds, local_midnight, period_of
from collectors.enedis.plan import StreamState, Window
from daemon.checks.series import SeriesChecker, SeriesSample
from daemon.points import Point, to_ns

__all__ = ["series_anomalies", "series_points"]

_OFFSETS = {
    ("load_curve", "consumption"): 0,
    ("load_curve", "production"): 1000,
    ("daily", "consumption"): 2000,
    ("daily", "production"): 3000,
    ("max_power", "consumption"): 4000,
}
_NS = 1_000_000_000


def _inside(samples: Sequence[Sample], first: date, end: date) -> list[Sample]:
    low, high = day_bounds(first, end)
    return [s for s in samples if low <= s.start < high]


def series_points(
    state: StreamState,
    series: MeterSeries | None,
    window: Window,
    offpeak: Sequence[OffPeakRange],
) -> tuple[list[Point], set[date]]:
    """The points of one window and the local days that had at least one value."""
    points: list[Point] = []
    days: set[date] = set()
    if series is None:
        return points, days
    prm, direction = state.prm, state.direction
    for sample in _inside(series.samples, window.first, window.end):
        if sample.value is None:
            continue
        days.add(sample.start.astimezone(PARIS).date())
        stamp = to_ns(sample.start)
        if state.kind == "load_curve":
            tags = {"prm": prm, "direction": direction, "period": period_of(sample.start, offpeak)}
            fields = {
                "power_w": sample.value,
                "energy_wh": sample.value * sample.interval_s / 3600.0,
                "interval_s": sample.interval_s,
            }
            points.append(Point("enedis_load_curve", tags, fields, stamp))
        elif state.kind == "daily":
            tags = {"prm": prm, "direction": direction}
            points.append(Point("enedis_daily", tags, {"energy_wh": sample.value}, stamp))
        else:
            fields = {"power_va": sample.value}
            points.append(Point("enedis_max_power", {"prm": prm}, fields, stamp))
    return points, days


def _check_samples(state: StreamState, samples: list[Sample]) -> list[SeriesSample]:
    if state.kind == "max_power":  # judged per local day of the peak
        out = []
        for s in samples:
            day = s.start.astimezone(PARIS).date()
            start = local_midnight(day)
            length = to_ns(local_midnight(date.fromordinal(day.toordinal() + 1))) - to_ns(start)
            out.append(SeriesSample(to_ns(start), length, s.value))
        return out
    return [SeriesSample(to_ns(s.start), s.interval_s * _NS, s.value) for s in samples]


def series_anomalies(
    checker: SeriesChecker,
    state: StreamState,
    series: MeterSeries | None,
    first: date,
    done_end: date,
    limit: float | None,
) -> list[Point]:
    """Gaps, negative values and values above `limit` in the done part of a window."""
    if done_end <= first:
        return []
    samples = _inside(series.samples, first, done_end) if series else []
    low, high = day_bounds(first, done_end)
    return checker.check(
        state.key,
        state.prm,
        _check_samples(state, samples),
        expected=(to_ns(low), to_ns(high)),
        limit=None if state.kind == "daily" else limit,
        label=f"{state.kind} {state.direction}",
        offset_ns=_OFFSETS[(state.kind, state.direction)],
    )
