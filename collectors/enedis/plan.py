"""Per-stream progress and the windows still to fetch.

A stream is one PRM x kind (load curve, daily, max power) x direction. Its checkpoint says
which local days are done, as one contiguous range [`done_from`, `done_to`): the first
window ends today (data runs to yesterday), later windows extend the range backwards
(newest first) down to the start bound, and each daily poll extends it forwards. So after a
restart no finished window is requested again. A day counts as done once fetched, except the
last `pending_days` days before today when they came back empty: Enedis may publish them late,
so they are asked again at the next poll.

The start bound is the configured history, capped at what Enedis keeps (24 months for load
curves, 36 for daily data, plus 15 days), and moved forward when Enedis says the meter was
activated later (`floor`, ADAM-ERR0123).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from collectors.enedis.models import Direction, Kind

__all__ = ["StreamState", "Window", "done_until", "months_before", "next_window", "start_bound"]

HISTORY_MONTHS: dict[Kind, int] = {"load_curve": 24, "daily": 36, "max_power": 36}
GRACE = timedelta(days=15)


def months_before(day: date, months: int) -> date:
    """The same day `months` earlier (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def start_bound(
    kind: Kind,
    today: date,
    *,
    history_months: int,
    history_days: int | None = None,
    floor: date | None = None,
) -> date:
    """The oldest day to backfill for a stream of `kind`."""
    cap_months = HISTORY_MONTHS[kind]
    cap = months_before(today, cap_months) - GRACE
    if history_days is not None:
        wanted = today - timedelta(days=history_days)
    elif history_months >= cap_months:
        wanted = cap
    else:
        wanted = months_before(today, history_months)
    start = max(cap, wanted)
    return max(start, floor) if floor else start


@dataclass
class StreamState:
    """What the checkpoint of one stream holds."""

    prm: str
    kind: Kind
    direction: Direction
    done_from: date | None = None
    done_to: date | None = None
    floor: date | None = None
    disabled: dict[str, str] | None = None

    @property
    def key(self) -> str:
        return f"stream/{self.prm}/{self.kind}/{self.direction}"

    def to_json(self) -> dict[str, Any]:
        return {
            "done_from": self.done_from.isoformat() if self.done_from else None,
            "done_to": self.done_to.isoformat() if self.done_to else None,
            "floor": self.floor.isoformat() if self.floor else None,
            "disabled": self.disabled,
        }

    @classmethod
    def from_json(
        cls, prm: str, kind: Kind, direction: Direction, raw: dict[str, Any] | None
    ) -> StreamState:
        raw = raw or {}

        def day(name: str) -> date | None:
            value = raw.get(name)
            return date.fromisoformat(value) if value else None

        return cls(
            prm,
            kind,
            direction,
            day("done_from"),
            day("done_to"),
            day("floor"),
            raw.get("disabled"),
        )

    def record(self, first: date, done_end: date) -> None:
        """Mark [first, done_end) done (adjacent to the done range, or the first window)."""
        if done_end < first:
            return
        if self.done_from is None or self.done_to is None:
            self.done_from, self.done_to = first, done_end
            return
        self.done_from = min(self.done_from, first)
        self.done_to = max(self.done_to, done_end)


@dataclass(frozen=True)
class Window:
    """Local days [first, end) to fetch; `forward` when it extends the range to today."""

    first: date
    end: date
    forward: bool


def next_window(
    state: StreamState, today: date, start: date, days: int, *, skip_forward: bool = False
) -> Window | None:
    """The next window to fetch, newest first; None when the stream is up to date."""
    if state.done_to is None or state.done_from is None:
        first = max(today - timedelta(days=days), start)
        return Window(first, today, True) if first < today else None
    if state.done_to < today and not skip_forward:
        return Window(state.done_to, min(state.done_to + timedelta(days=days), today), True)
    if state.done_from > start:
        return Window(max(state.done_from - timedelta(days=days), start), state.done_from, False)
    return None


def done_until(window: Window, today: date, pending_days: int, data_days: set[date]) -> date:
    """End of the done part of a fetched window: all of it, except a trailing run of empty
    days within `pending_days` of today (not yet published, asked again next time)."""
    cut = today - timedelta(days=pending_days)
    if window.end <= cut:
        return window.end
    last_data_end = max((d + timedelta(days=1) for d in data_days if d < window.end), default=None)
    candidates = [window.first, min(window.end, cut)]
    if last_data_end is not None:
        candidates.append(min(window.end, last_data_end))
    return max(candidates)
