"""What the Enedis simulator answers: parameter and meter checks, and response bodies.

Pure functions over `sim_data` meters: `check_dates` and `check_meter` raise `Refused` with
the status and error name Enedis uses; `points` builds a window's values; `v2_body` and
`v5_body` lay them out as Data Connect 2026 and v5 `meter_reading` bodies.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from collectors.enedis.sim_data import Meter, daily_energy, day_slots, peak

__all__ = [
    "CONSO_V5",
    "ERRORS",
    "V2",
    "V5",
    "Refused",
    "SimRequest",
    "check_dates",
    "check_meter",
    "named",
    "points",
    "v2_body",
    "v5_body",
]

V2 = {
    "courbe_de_charge_consommation": ("load_curve", "consumption"),
    "courbe_de_charge_production": ("load_curve", "production"),
    "consommation_quotidienne": ("daily", "consumption"),
    "production_quotidienne": ("daily", "production"),
    "puissance_conso_max_quotidienne": ("max_power", "consumption"),
}
V5 = {
    ("metering_data_clc", "consumption_load_curve"): ("load_curve", "consumption"),
    ("metering_data_plc", "production_load_curve"): ("load_curve", "production"),
    ("metering_data_dc", "daily_consumption"): ("daily", "consumption"),
    ("metering_data_dp", "daily_production"): ("daily", "production"),
    ("metering_data_dcmp", "daily_consumption_max_power"): ("max_power", "consumption"),
}
CONSO_V5 = {
    "consumption_load_curve": ("load_curve", "consumption"),
    "production_load_curve": ("load_curve", "production"),
    "daily_consumption": ("daily", "consumption"),
    "daily_production": ("daily", "production"),
    "consumption_max_power": ("max_power", "consumption"),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PRM = re.compile(r"^\d{14}$")
ERRORS = {
    "ADAM-DC-0008": (403, "No consent can be found for this customer and this usage point"),
    "ADAM-DC-0007": (400, "The requester is not the holder of this usage point"),
    "ADAM-ERR0069": (400, "The usage point has no measure of this direction"),
    "ADAM-ERR0075": (400, "The load curve collection is not enabled for this usage point"),
    "ADAM-ERR0123": (
        400,
        "The requested period cannot be anterior to the meter's last activation date",
    ),
    "no_data_found": (404, "No measure data found for the requested period"),
    "technical_error": (500, "A technical error occurred"),
}


class Refused(Exception):
    """A request Enedis refuses: status, error code, description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


@dataclass
class SimRequest:
    """One data request: API shape (v2/v5), stream, PRM and the raw dates."""

    api: str
    kind: str
    direction: str
    prm: str
    first: str
    end: str


def check_dates(
    kind: str, first_text: str | None, end_text: str | None, today: date
) -> tuple[date, date]:
    """The requested local days, or the refusal Enedis gives."""
    for name, text in (("start", first_text), ("end", end_text)):
        if not text or not _DATE.match(text):
            raise Refused(400, "invalid_request", f"{name} date must be YYYY-MM-DD")
    try:
        first, end = date.fromisoformat(first_text or ""), date.fromisoformat(end_text or "")
    except ValueError:
        raise Refused(400, "invalid_request", "invalid date") from None
    if first >= end:
        raise Refused(400, "invalid_request", "start date must be before end date")
    if end > today:
        raise Refused(400, "invalid_request", "end date cannot be after today")
    most = 7 if kind == "load_curve" else 365
    if (end - first).days > most:
        raise Refused(400, "invalid_request", f"period longer than {most} days")
    months = 24 if kind == "load_curve" else 36  # history kept, plus 15 days
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    floor = date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))
    if first < floor - timedelta(days=15):
        raise Refused(400, "invalid_request", "start date is beyond the history available")
    return first, end


def check_meter(
    meters: dict[str, Meter], prm: str | None, kind: str, direction: str, first: date
) -> Meter:
    """The meter asked for, or the named error Enedis answers."""
    if not prm or not _PRM.match(prm):
        raise Refused(400, "invalid_request", "usage point id must be 14 digits")
    meter = meters.get(prm)
    if meter is None or meter.revoked:
        raise Refused(*named("ADAM-DC-0008"))
    if meter.moved:
        raise Refused(*named("ADAM-DC-0007"))
    if not (meter.consumption if direction == "consumption" else meter.production):
        raise Refused(*named("ADAM-ERR0069"))
    if kind == "load_curve" and not meter.load_curve:
        raise Refused(*named("ADAM-ERR0075"))
    if first < meter.activation:
        raise Refused(*named("ADAM-ERR0123"))
    return meter


def named(code: str) -> tuple[int, str, str]:
    status, description = ERRORS[code]
    return status, code, description


def points(
    meter: Meter, kind: str, direction: str, first: date, end: date
) -> list[tuple[str | None, str, str]]:
    out: list[tuple[str | None, str, str]] = []
    day = first
    while day < end:
        slots = day_slots(meter, direction, day)
        day += timedelta(days=1)
        if slots is None:
            continue
        if kind == "load_curve":
            out += [
                (
                    None if s.value is None else str(int(s.value)),
                    s.end_text,
                    f"PT{s.seconds // 60}M",
                )
                for s in slots
            ]
        elif kind == "daily":
            energy = daily_energy(slots)
            out.append(
                (
                    None if energy is None else str(int(energy)),
                    (day - timedelta(days=1)).isoformat(),
                    "P1D",
                )
            )
        else:
            top = peak(meter, slots)
            stamp = f"{day - timedelta(days=1)} 00:00:00"
            out.append((str(int(top[0])), top[1], "P1D") if top else (None, stamp, "P1D"))
    if not out:
        raise Refused(*named("no_data_found"))
    return out


def v2_body(req: SimRequest, points: list[tuple[str | None, str, str]]) -> dict[str, Any]:
    physical, unit = {
        "load_curve": ("PA", "W"),
        "daily": ("EA", "Wh"),
        "max_power": ("PMA", "VA"),
    }[req.kind]
    return {
        "idPrm": req.prm,
        "etapeMetier": "BRUT",
        "periode": {"dateDebut": req.first, "dateFin": req.end},
        "modeCalcul": "MOYENNE" if req.kind == "load_curve" else "BRUT",
        "grandeur": [
            {
                "grandeurMetier": "CONS" if req.direction == "consumption" else "PROD",
                "grandeurPhysique": physical,
                "unite": unit,
                "points": [{"v": v, "d": d, "p": p, "n": "B"} for v, d, p in points],
            }
        ],
    }


def v5_body(req: SimRequest, points: list[tuple[str | None, str, str]]) -> dict[str, Any]:
    kinds = {
        "load_curve": ("W", "power", "average", None),
        "daily": ("Wh", "energy", "sum", "P1D"),
        "max_power": ("VA", "power", "maximum", "P1D"),
    }
    unit, measure, aggregate, period = kinds[req.kind]
    reading_type = {"unit": unit, "measurement_kind": measure, "aggregate": aggregate}
    if period:
        reading_type["measuring_period"] = period
    readings = []
    for v, d, p in points:
        item: dict[str, Any] = {"value": v, "date": d}
        if req.kind == "load_curve":
            item |= {"interval_length": p, "measure_type": "B"}
        readings.append(item)
    return {
        "usage_point_id": req.prm,
        "start": req.first,
        "end": req.end,
        "quality": "BRUT",
        "reading_type": reading_type,
        "interval_reading": readings,
    }
