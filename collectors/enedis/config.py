"""The `sources.enedis` config block: access mode, credentials, PRMs, history, quotas.

Off-peak hours are local (Europe/Paris) ranges "HH:MM-HH:MM"; a range may cross midnight
("22:00-06:00"). A load-curve slot is HC when its start falls in a range (start included,
end excluded), HP otherwise; with no ranges configured every slot is BASE.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.collector import SourceConfig
from daemon.secrets import Secret

__all__ = ["EnedisConfig", "OffPeakRange", "PrmConfig", "parse_offpeak"]

Mode = Literal["data_connect", "conso_api", "metering_v5"]

_RANGE = re.compile(r"^\s*(\d{1,2})[:hH](\d{2})\s*-\s*(\d{1,2})[:hH](\d{2})\s*$")


class OffPeakRange(BaseModel):
    """One off-peak range in local time; `end <= start` means it crosses midnight."""

    model_config = ConfigDict(frozen=True)

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def parse_offpeak(text: str) -> OffPeakRange:
    """ "22:00-06:00" → OffPeakRange (also accepts "22h00-6h00")."""
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"off-peak range {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"off-peak range {text!r} has an impossible time")
    start, end = time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)
    if start == end:
        raise ValueError(f"off-peak range {text!r} is empty")
    return OffPeakRange(start=start, end=end)


def _ranges(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [parse_offpeak(item) if isinstance(item, str) else item for item in value]
    return value


class PrmConfig(BaseModel):
    """One delivery point (PRM) and what to collect from it."""

    model_config = ConfigDict(extra="forbid")

    prm: str = Field(pattern=r"^\d{14}$")
    consumption: bool = True
    production: bool = False
    load_curve: bool = True
    daily: bool = True
    max_power: bool = True
    subscribed_power_kva: float | None = Field(default=None, gt=0)
    offpeak_hours: list[OffPeakRange] | None = None
    history_days: int | None = Field(default=None, ge=1)

    _split = field_validator("offpeak_hours", mode="before")(_ranges)


class EnedisConfig(SourceConfig):
    """Enedis: Data Connect 2026, the Conso API proxy, or the v5 metering_data shape."""

    mode: Mode = "data_connect"
    base_url: str = "https://gw.ext.prod.api.enedis.fr"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    token: Secret | None = None
    conso_api_version: Literal["v2", "v5"] = "v2"
    prms: list[PrmConfig] = Field(min_length=1)
    offpeak_hours: list[OffPeakRange] = Field(default_factory=list)
    history_months: int = Field(default=36, ge=1, le=36)
    history_days: int | None = Field(default=None, ge=1)
    pending_days: int = Field(default=2, ge=0, le=7)
    poll_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    requests_per_second: int = Field(default=5, ge=1)
    requests_per_hour: int = Field(default=1000, ge=1)
    quota_margin_s: float = Field(default=0.05, ge=0)
    retry_attempts: int = Field(default=5, ge=1)
    retry_base_s: float = Field(default=1.0, ge=0)
    max_retry_wait_s: float = Field(default=3600.0, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)
    fetch_contract: bool = True
    disabled_retry_days: int = Field(default=7, ge=1)

    _split = field_validator("offpeak_hours", mode="before")(_ranges)

    @model_validator(mode="after")
    def _credentials(self) -> EnedisConfig:
        if self.mode == "data_connect" and not (self.client_id and self.client_secret):
            raise ValueError("mode data_connect needs client_id and client_secret")
        if self.mode == "conso_api" and self.token is None:
            raise ValueError("mode conso_api needs token (the Conso API bearer token)")
        if self.mode == "metering_v5" and self.token is None and not self.client_id:
            raise ValueError("mode metering_v5 needs token, or client_id and client_secret")
        seen: set[str] = set()
        for item in self.prms:
            if item.prm in seen:
                raise ValueError(f"PRM {item.prm} is listed twice")
            seen.add(item.prm)
            if not (item.consumption or item.production):
                raise ValueError(f"PRM {item.prm}: enable consumption and/or production")
        return self

    def offpeak_for(self, prm: PrmConfig) -> list[OffPeakRange]:
        return self.offpeak_hours if prm.offpeak_hours is None else prm.offpeak_hours
