"""The `sources.qualicharge` config block: the database to read sessions from, the filter,
and (optionally) the API to poll statuses from."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.collector import HttpUrl, SourceConfig
from daemon.secrets import Secret

__all__ = ["DEFAULT_API_URL", "QualiChargeApiConfig", "QualiChargeConfig"]

DEFAULT_API_URL = "https://api.qualicharge.beta.gouv.fr"
_UNIT = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}$")
_ID = re.compile(r"^[A-Z]{2}[A-Z0-9]{4,33}$")
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class QualiChargeApiConfig(BaseModel):
    """The QualiCharge API, for the latest charge point statuses."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = DEFAULT_API_URL
    username: str = Field(min_length=1)
    password: Secret
    statuses_interval_s: float = Field(300.0, ge=5)
    stations: list[str] = Field(default_factory=list)
    pdcs: list[str] = Field(default_factory=list)
    ids_per_request: int = Field(100, ge=1, le=500)
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(4, ge=1, le=20)
    retry_max_wait_s: float = Field(60.0, ge=0)
    relogin_margin_s: float = Field(120.0, ge=0, description="log in again this long before expiry")

    @field_validator("stations", "pdcs")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        bad = [value for value in values if not _ID.match(value)]
        if bad:
            raise ValueError(f"not an itinerance id (e.g. FRABCP0001): {', '.join(bad[:3])}")
        return values


class QualiChargeConfig(SourceConfig):
    """Where the QualiCharge sessions are read, which ones, and how often."""

    database_url: Secret = Field(description="SQLAlchemy URL (PostgreSQL, or an SQLite copy)")
    db_schema: str | None = Field(None, description="PostgreSQL schema holding the tables")
    operational_units: list[str] = Field(default_factory=list)
    sirens: list[str] = Field(default_factory=list)
    sessions_interval_s: float = Field(300.0, ge=1)
    page_size: int = Field(
        50_000,
        ge=10,
        le=100_000,
        description="sessions per page, each judged and committed in one transaction (fewer, "
        "larger transactions: the ledger's index writes cost per transaction; a page of "
        "50,000 sessions takes about 10 MB in columns)",
    )
    settle_s: float = Field(
        120.0,
        ge=0,
        description="rows updated less than this long ago are left for the next poll, so a "
        "transaction committing late cannot slip behind the watermark",
    )
    since: datetime | None = Field(
        None, description="first `updated_at` to read on the very first poll (default: all)"
    )
    start_lookback_days: float | None = Field(
        None,
        gt=0,
        description="only read sessions that started at most this long before the watermark "
        "(lets TimescaleDB skip old chunks; corrections of older sessions are then missed)",
    )
    api: QualiChargeApiConfig | None = None

    @field_validator("operational_units")
    @classmethod
    def _units(cls, values: list[str]) -> list[str]:
        bad = [value for value in values if not _UNIT.match(value)]
        if bad:
            raise ValueError(f"an operational unit code is 5 characters (FRTSL): {bad[:3]}")
        return values

    @field_validator("sirens")
    @classmethod
    def _sirens(cls, values: list[str]) -> list[str]:
        bad = [value for value in values if not (len(value) == 9 and value.isdigit())]
        if bad:
            raise ValueError(f"a SIREN is 9 digits: {bad[:3]}")
        return values

    @field_validator("db_schema")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEMA.match(value):
            raise ValueError("must be a plain identifier")
        return value

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2025-01-01T00:00:00+00:00")
        return value

    @model_validator(mode="after")
    def _filtered(self) -> QualiChargeConfig:
        if not self.operational_units and not self.sirens:
            raise ValueError(
                "set operational_units and/or sirens: the collector reads only the sessions "
                "of the operators it is configured for"
            )
        return self
