"""BlueCurrent messages → points, as declarative tables.

`STATUS_FIELDS` says, for each key of `CH_STATUS.data`, which field of `bluecurrent_status`
it becomes, its unit and its converter; `GRID_FIELDS` does the same for `GRID_STATUS` /
`GRID_CURRENT` → `bluecurrent_grid`. `power_kw` is derived: the sum over the three phases
of voltage x current, in kW. A missing or null value leaves its field out of the point.

Points are stamped when the message was received. Two messages of one charge point can be
received within the same clock tick (or a clock can step back); the mapper keeps the last
stamp per series and moves a clashing one on by a nanosecond, because InfluxDB keeps one
point per series and timestamp and a clash would silently overwrite a message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors.bluecurrent.models import (
    ChStatusMessage,
    GridCurrentMessage,
    GridStatusMessage,
    parse_status_datetime,
)
from daemon.points import FieldValue, Point

__all__ = [
    "GRID_FIELDS",
    "GRID_MEASUREMENT",
    "STATUS_DATES",
    "STATUS_FIELDS",
    "STATUS_MEASUREMENT",
    "FieldSpec",
    "StatusMapper",
    "power_kw",
]

STATUS_MEASUREMENT = "bluecurrent_status"
GRID_MEASUREMENT = "bluecurrent_grid"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One source key → one point field, with its unit and converter."""

    key: str
    field: str
    unit: str
    convert: Callable[[Any], FieldValue]


STATUS_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("actual_v1", "voltage_v1", "V", float),
    FieldSpec("actual_v2", "voltage_v2", "V", float),
    FieldSpec("actual_v3", "voltage_v3", "V", float),
    FieldSpec("actual_p1", "current_a1", "A", float),
    FieldSpec("actual_p2", "current_a2", "A", float),
    FieldSpec("actual_p3", "current_a3", "A", float),
    FieldSpec("actual_kwh", "energy_kwh", "kWh", float),
    FieldSpec("max_usage", "max_usage_a", "A", float),
    FieldSpec("smartcharging_max_usage", "smartcharging_max_usage_a", "A", float),
    FieldSpec("max_offline", "max_offline_a", "A", float),
    FieldSpec("total_cost", "total_cost_eur", "EUR", float),
    FieldSpec("activity", "activity", "", str),
    FieldSpec("vehicle_status", "vehicle_status", "", str),
)
"""`CH_STATUS.data` key → `bluecurrent_status` field (plus the derived `power_kw`)."""

STATUS_DATES: tuple[str, ...] = ("start_datetime", "stop_datetime", "offline_since")
"""Date keys of `CH_STATUS.data`: validated ("%Y%m%d %H:%M:%S", Amsterdam), not stored."""

GRID_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("grid_actual_p1", "current_a1", "A", float),
    FieldSpec("grid_actual_p2", "current_a2", "A", float),
    FieldSpec("grid_actual_p3", "current_a3", "A", float),
    FieldSpec("grid_max_install", "max_install_a", "A", float),
    FieldSpec("grid_max_reserved", "max_reserved_a", "A", float),
)
"""`GRID_STATUS.data` / `GRID_CURRENT` key → `bluecurrent_grid` field."""

_STATUS = tuple((spec.key, spec.field, spec.convert) for spec in STATUS_FIELDS)
_GRID = tuple((spec.key, spec.field, spec.convert) for spec in GRID_FIELDS)
_DATE_CACHE_LIMIT = 4096


def power_kw(data: Mapping[str, Any]) -> float:
    """Active power in kW: sum of phase voltage x phase current / 1000."""
    return (
        data["actual_v1"] * data["actual_p1"]
        + data["actual_v2"] * data["actual_p2"]
        + data["actual_v3"] * data["actual_p3"]
    ) / 1000.0


def _fields(data: Mapping[str, Any], table: tuple[tuple[str, str, Any], ...]) -> dict:
    fields: dict[str, FieldValue] = {}
    for key, field, convert in table:
        value = data.get(key)
        if value is not None:
            fields[field] = convert(value)
    return fields


class StatusMapper:
    """Turns validated data messages into points; keeps per-series stamps and a date cache."""

    def __init__(self) -> None:
        self._last_status: dict[str, int] = {}
        self._last_grid: dict[str, int] = {}
        self._dates: dict[str, datetime | None] = {}

    def _date(self, text: str) -> datetime | None:
        cached = self._dates.get(text, self)
        if cached is not self:
            return cached  # type: ignore[return-value]
        parsed = parse_status_datetime(text)
        if len(self._dates) >= _DATE_CACHE_LIMIT:
            self._dates.clear()
        self._dates[text] = parsed
        return parsed

    def status_dates(self, message: ChStatusMessage) -> dict[str, datetime | None]:
        """The message's dates, parsed (ValueError when one is malformed)."""
        data = message["data"]
        return {key: self._date(data.get(key) or "") for key in STATUS_DATES}  # type: ignore[misc]

    def status_point(self, message: ChStatusMessage, received_ns: int) -> Point:
        """The `bluecurrent_status` point of a `CH_STATUS` (ValueError on a bad date)."""
        data = message["data"]
        for key in STATUS_DATES:
            text = data.get(key)  # type: ignore[misc]
            if text:
                self._date(text)
        fields = _fields(data, _STATUS)
        fields["power_kw"] = power_kw(data)
        evse_id = message["evse_id"]
        last = self._last_status.get(evse_id, 0)
        stamp = received_ns if received_ns > last else last + 1
        self._last_status[evse_id] = stamp
        return Point(STATUS_MEASUREMENT, {"evse_id": evse_id}, fields, stamp)

    def grid_point(
        self, message: GridStatusMessage | GridCurrentMessage, received_ns: int
    ) -> Point | None:
        """The `bluecurrent_grid` point, or None when no charge point can be named."""
        evse_id = message.get("evse_id")
        if message["object"] == "GRID_STATUS":
            data: Mapping[str, Any] = message["data"]  # type: ignore[typeddict-item]
            if not evse_id:
                grid_id = data.get("id") or ""
                evse_id = grid_id.removeprefix("GRID-") if grid_id.startswith("GRID-") else ""
        else:
            data = message
        if not evse_id:
            return None
        fields = _fields(data, _GRID)
        last = self._last_grid.get(evse_id, 0)
        stamp = received_ns if received_ns > last else last + 1
        self._last_grid[evse_id] = stamp
        return Point(GRID_MEASUREMENT, {"evse_id": evse_id}, fields, stamp)
