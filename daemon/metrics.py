"""Internal counters, emitted as `chargeflux_internal` points (like Telegraf's internal plugin).

Each component (a collector, the outbox, the sink) owns a `Counters`; the runtime's metrics
job turns every component's cumulative values into one point per component.
"""

from __future__ import annotations

import time

from daemon.points import Point

__all__ = ["COUNTER_FIELDS", "Counters", "Metrics"]

COUNTER_FIELDS = (
    "points_in",
    "points_written",
    "points_dropped",
    "outbox_depth",
    "requests",
    "errors",
    "retries",
)


class Counters:
    """Cumulative counters of one component (plus free-form extra ones, e.g. reconnects)."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.values: dict[str, int] = dict.fromkeys(COUNTER_FIELDS, 0)

    def inc(self, name: str, amount: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + amount

    def set(self, name: str, value: int) -> None:
        self.values[name] = value

    def __getitem__(self, name: str) -> int:
        return self.values.get(name, 0)


class Metrics:
    """All components' counters, owned by the runtime (no module-level state)."""

    def __init__(self) -> None:
        self._components: dict[str, Counters] = {}

    def component(self, name: str) -> Counters:
        if name not in self._components:
            self._components[name] = Counters(name)
        return self._components[name]

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {name: dict(c.values) for name, c in self._components.items()}

    def points(self, now_ns: int | None = None) -> list[Point]:
        stamp = time.time_ns() if now_ns is None else now_ns
        return [
            Point("chargeflux_internal", {"component": name}, dict(c.values), stamp)
            for name, c in sorted(self._components.items())
        ]
