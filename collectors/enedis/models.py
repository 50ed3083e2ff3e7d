"""Pydantic models of every payload Enedis (or a proxy) sends, and the one model out.

Three response shapes carry the same measurements:

- Data Connect 2026 (`/mesure_synchrone_auto/v2/...`), passed through unchanged by the Conso
  API proxy since the switch: `V2Response` (`grandeur[].points[]` of `v`, `d`, `p`, `n`);
- the v5 `metering_data_*` APIs: `V5Wrapped` (`{"meter_reading": {...}}`);
- older Conso API deployments: the flattened v5 `meter_reading` at the top level (`V5Reading`).

Parsers in `parsing.py` turn any of them into a `MeterSeries` of UTC `Sample`s.
Error bodies: Enedis (`EnedisErrorBody`), the API gateway (`GatewayErrorBody`, 429/401/403
with a numeric `code`), and the Conso API wrapper (`ConsoErrorBody`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ConsoErrorBody",
    "ContractsResponse",
    "Direction",
    "EnedisErrorBody",
    "GatewayErrorBody",
    "Kind",
    "MeterSeries",
    "Sample",
    "TokenResponse",
    "V2Response",
    "V5Reading",
    "V5Wrapped",
]

Kind = Literal["load_curve", "daily", "max_power"]
Direction = Literal["consumption", "production"]

NumberText = str | int | float | None


def _numeric(value: NumberText) -> NumberText:
    """Values arrive as strings; refuse anything that is not a number (or null)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a measurement")
    if isinstance(value, str) and value.strip():
        float(value)  # raises ValueError → validation error
    return value


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class V2Point(_Loose):
    v: NumberText = None
    d: str
    p: str | None = None
    n: str | None = None

    _v = field_validator("v")(_numeric)


class V2Grandeur(_Loose):
    grandeurMetier: str
    grandeurPhysique: str | None = None
    unite: str | None = None
    points: list[V2Point] = Field(default_factory=list)


class V2Periode(_Loose):
    dateDebut: str | None = None
    dateFin: str | None = None


class V2Response(_Loose):
    idPrm: str
    etapeMetier: str | None = None
    periode: V2Periode | None = None
    modeCalcul: str | None = None
    grandeur: list[V2Grandeur]


class V5IntervalReading(_Loose):
    value: NumberText = None
    date: str
    interval_length: str | None = None
    measure_type: str | None = None

    _v = field_validator("value")(_numeric)


class V5ReadingType(_Loose):
    unit: str | None = None
    measurement_kind: str | None = None
    aggregate: str | None = None
    measuring_period: str | None = None


class V5Reading(_Loose):
    usage_point_id: str
    start: str | None = None
    end: str | None = None
    quality: str | None = None
    reading_type: V5ReadingType | None = None
    interval_reading: list[V5IntervalReading]


class V5Wrapped(_Loose):
    meter_reading: V5Reading


class TokenResponse(_Loose):
    access_token: str = Field(min_length=1)
    token_type: str = "Bearer"
    expires_in: int = Field(default=12600, gt=0)


class EnedisErrorBody(_Loose):
    error: str
    error_description: str = ""


class GatewayErrorBody(_Loose):
    code: str | int
    message: str = ""
    description: str = ""
    nextAccessTime: str | None = None


class ConsoErrorBody(_Loose):
    status: int | None = None
    message: str = ""
    error: Any = None


class _Contract(_Loose):
    subscribed_power: str | None = None
    offpeak_hours: str | None = None
    last_activation_date: str | None = None


class _UsagePointContract(_Loose):
    contracts: _Contract


class _Customer(_Loose):
    usage_points: list[_UsagePointContract]


class ContractsResponse(_Loose):
    customer: _Customer

    def subscribed_kva(self) -> float | None:
        """ "9 kVA" → 9.0 (None when absent)."""
        for item in self.customer.usage_points:
            text = (item.contracts.subscribed_power or "").lower().replace("kva", "").strip()
            if text:
                return float(text.replace(",", "."))
        return None


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: UTC start (curves: interval start; daily: local midnight; max power:
    the moment of the peak), its duration in seconds, and its value (None: missing)."""

    start: datetime
    interval_s: int
    value: float | None


@dataclass(frozen=True)
class MeterSeries:
    """The one model out: what any response shape says about one PRM stream."""

    prm: str
    kind: Kind
    direction: Direction
    unit: str
    samples: list[Sample]
