"""Streaming checks on measurement series: gaps, negative values, values above a limit.

Source-agnostic: a collector hands over a batch of samples of one series (start, duration,
value; None = missing) and optionally the range the batch was meant to cover, and gets back
`anomaly` points. Each sample is judged once, in O(1); the only state is the end of the last
sample seen per series, used when a batch comes without an expected range (a live feed).

Rules (tag `rule` of the anomaly point):

- `GAP`: a stretch of the expected range no sample covers, or covered only by missing values;
  one point per contiguous stretch, at its start; `value` = missing seconds, `threshold` =
  the series' step when known; `detail` names the stretch.
- `NEGATIVE`: a value below zero; `value` = the value, `threshold` = 0.
- `OVERPOWER` (or the name given): a value above `limit`; `value`, `threshold` = limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.anomaly import anomaly_point
from daemon.points import Point

__all__ = ["SeriesChecker", "SeriesSample"]


@dataclass(frozen=True, slots=True)
class SeriesSample:
    """One sample: start and duration in nanoseconds, value (None when missing)."""

    time_ns: int
    duration_ns: int
    value: float | None


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SeriesChecker:
    """Judges batches of series samples; one instance per source."""

    def __init__(
        self,
        source: str,
        *,
        gap_rule: str = "GAP",
        negative_rule: str = "NEGATIVE",
        above_rule: str = "OVERPOWER",
    ) -> None:
        self.source = source
        self.gap_rule = gap_rule
        self.negative_rule = negative_rule
        self.above_rule = above_rule
        self._last_end: dict[str, int] = {}

    def check(
        self,
        series: str,
        subject: str,
        samples: Sequence[SeriesSample],
        *,
        expected: tuple[int, int] | None = None,
        limit: float | None = None,
        allow_negative: bool = False,
        label: str = "",
        offset_ns: int = 0,
    ) -> list[Point]:
        """Anomaly points for one batch of `series` (samples in time order).

        `expected` = (start_ns, end_ns) the batch should cover; without it, a gap is any
        space between the previous batch's last sample and this batch's first one."""
        out: list[Point] = []
        ordered = sorted(samples, key=lambda s: s.time_ns)
        if expected is not None:
            cursor, end = expected
        else:
            cursor, end = self._last_end.get(series, -1), -1
        step = 0
        for sample in ordered:
            if sample.duration_ns:
                step = sample.duration_ns
            if sample.value is None:
                continue
            if cursor >= 0 and sample.time_ns > cursor:
                out.append(self._gap(subject, cursor, sample.time_ns, step, label, offset_ns))
            cursor = max(cursor, sample.time_ns + sample.duration_ns)
            if sample.value < 0 and not allow_negative:
                out.append(
                    anomaly_point(
                        source=self.source,
                        rule=self.negative_rule,
                        subject=subject,
                        at=sample.time_ns,
                        value=sample.value,
                        threshold=0.0,
                        detail=f"{label}: negative value".strip(": "),
                        offset_ns=offset_ns,
                    )
                )
            if limit is not None and sample.value > limit:
                out.append(
                    anomaly_point(
                        source=self.source,
                        rule=self.above_rule,
                        subject=subject,
                        at=sample.time_ns,
                        value=sample.value,
                        threshold=limit,
                        detail=f"{label}: above {limit:g}".strip(": "),
                        offset_ns=offset_ns,
                    )
                )
        if end >= 0 and cursor < end:
            out.append(
                self._gap(
                    subject,
                    max(cursor, expected[0] if expected else cursor),
                    end,
                    step,
                    label,
                    offset_ns,
                )
            )
        if cursor >= 0:
            self._last_end[series] = max(self._last_end.get(series, cursor), cursor)
        return out

    def _gap(
        self, subject: str, start: int, end: int, step: int, label: str, offset_ns: int
    ) -> Point:
        seconds = (end - start) / 1e9
        detail = f"{label}: no data from {_iso(start)} to {_iso(end)}".strip(": ")
        return anomaly_point(
            source=self.source,
            rule=self.gap_rule,
            subject=subject,
            at=start,
            value=seconds,
            threshold=step / 1e9 if step else None,
            detail=detail,
            offset_ns=offset_ns,
        )
