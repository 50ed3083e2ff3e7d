"""The `sources.econnect` config block: defaults, validation and secret handling."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from collectors.econnect.config import DEFAULT_BASE_URL, EconnectConfig

BASE: dict[str, Any] = {"business_partner": "100042", "username": "ops", "password": "s3cret"}


def test_defaults() -> None:
    """Only partner and credentials are needed; the rest defaults to the real API, weekly."""
    config = EconnectConfig.model_validate(BASE)
    assert config.base_url == DEFAULT_BASE_URL
    assert (config.page_size, config.schedule, config.verify_tls) == (100, "17 6 * * 1", True)
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"page_size": 101}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"schedule": "every monday"}, "schedule"),
        ({"schedule": "61 6 * * 1"}, "schedule"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"business_partner": "1/../2"}, "business_partner"),
        ({"unknown_option": 1}, "unknown_option"),
        ({"timezone": "Europe/Pariss"}, "timezone"),
        ({"password": {"env": "ECONNECT_TEST_UNSET_VARIABLE"}}, "password"),
    ],
)
def test_invalid_values_are_refused(override: dict[str, Any], where: str) -> None:
    """Out-of-range page sizes, bad cron, bad URLs and unknown keys are config errors."""
    with pytest.raises(ValidationError) as caught:
        EconnectConfig.model_validate({**BASE, **override})
    assert where in str(caught.value)


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The password may come from an environment variable reference."""
    monkeypatch.setenv("ECONNECT_PASSWORD", "from-env")
    config = EconnectConfig.model_validate({**BASE, "password": {"env": "ECONNECT_PASSWORD"}})
    assert config.password.get_secret_value() == "from-env"
    assert config.base_url == DEFAULT_BASE_URL.rstrip("/")
