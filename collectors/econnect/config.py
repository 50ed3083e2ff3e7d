"""The `sources.econnect` config block."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator

from daemon.collector import HttpUrl, SourceConfig
from daemon.secrets import Secret

__all__ = ["DEFAULT_BASE_URL", "EconnectConfig"]

DEFAULT_BASE_URL = "https://api.services-emobility.com"


class EconnectConfig(SourceConfig):
    """Where and how to pull eConnect station master data, and when."""

    base_url: HttpUrl = DEFAULT_BASE_URL
    business_partner: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: Secret
    page_size: int = Field(100, ge=1, le=100)
    schedule: str = "17 6 * * 1"
    timezone: str = "Europe/Paris"
    poll_at_start: bool = True
    verify_tls: bool = True
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(5, ge=1, le=20)
    retry_max_wait_s: float = Field(60.0, ge=0)
    max_pages: int = Field(10_000, ge=1)

    @field_validator("business_partner")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        if "/" in value or "?" in value:
            raise ValueError("must be the business partner number, without / or ?")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Paris)") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a cron expression (minute hour dom month dow): {exc}") from None
        return value
