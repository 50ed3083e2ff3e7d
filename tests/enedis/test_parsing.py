"""Parsing of the three response shapes and the Europe/Paris → UTC conversion."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from collectors.enedis.config import EnedisConfig, parse_offpeak
from collectors.enedis.models import V2Response, V5Reading, V5Wrapped
from collectors.enedis.parsing import duration_s, parse_v2, parse_v5, period_of
from daemon.errors import DataError


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _v2(points: list[dict[str, object]], grandeur: str = "CONS") -> V2Response:
    return V2Response.model_validate(
        {
            "idPrm": "22516914714270",
            "etapeMetier": "BRUT",
            "periode": {"dateDebut": "2025-10-26", "dateFin": "2025-10-27"},
            "modeCalcul": "MOYENNE",
            "grandeur": [
                {
                    "grandeurMetier": grandeur,
                    "grandeurPhysique": "PA",
                    "unite": "W",
                    "points": points,
                }
            ],
        }
    )


def test_fall_back_repeated_hour_keeps_both_values() -> None:
    """On 26 October 2025 the repeated local 02:00/02:30 ends map to distinct UTC starts."""
    ends = ["01:30", "02:00", "02:30", "02:00", "02:30", "03:00"]
    body = _v2(
        [
            {"v": str(i), "d": f"2025-10-26 {e}:00", "p": "PT30M", "n": "B"}
            for i, e in enumerate(ends)
        ]
    )
    series, dropped = parse_v2(body, "load_curve", "consumption")
    starts = [s.start for s in series.samples]
    assert dropped == []
    assert starts == [
        _z("2025-10-25T23:00"),
        _z("2025-10-25T23:30"),
        _z("2025-10-26T00:00"),
        _z("2025-10-26T00:30"),
        _z("2025-10-26T01:00"),
        _z("2025-10-26T01:30"),
    ]
    assert [s.value for s in series.samples] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_fall_back_second_occurrence_alone_is_placed_after_its_predecessor() -> None:
    """If the first 02:30 is missing, the second one still lands in winter time by order."""
    ends = ["02:00", "02:00", "02:30"]
    body = _v2([{"v": "1", "d": f"2025-10-26 {e}:00", "p": "PT30M"} for e in ends])
    series, _ = parse_v2(body, "load_curve", "consumption")
    assert [s.start for s in series.samples] == [
        _z("2025-10-25T23:30"),
        _z("2025-10-26T00:30"),
        _z("2025-10-26T01:00"),
    ]


def test_spring_forward_end_at_three_is_the_slot_from_half_past_one() -> None:
    """On 30 March 2025 the slot ending at local 03:00 (CEST) started at 00:30 UTC."""
    body = _v2(
        [
            {"v": "5", "d": "2025-03-30 01:30:00", "p": "PT30M"},
            {"v": "6", "d": "2025-03-30 03:00:00", "p": "PT30M"},
            {"v": "7", "d": "2025-03-30 03:30:00", "p": "PT30M"},
        ]
    )
    series, _ = parse_v2(body, "load_curve", "consumption")
    assert [s.start for s in series.samples] == [
        _z("2025-03-30T00:00"),
        _z("2025-03-30T00:30"),
        _z("2025-03-30T01:00"),
    ]


def test_nonexistent_local_time_is_dropped_and_reported() -> None:
    """A local 02:30 on the spring-forward day never happened: dropped, not misplaced."""
    body = _v2([{"v": "5", "d": "2025-03-30 02:30:00", "p": "PT30M"}])
    series, dropped = parse_v2(body, "load_curve", "consumption")
    assert series.samples == [] and dropped == ["2025-03-30 02:30:00"]


@pytest.mark.parametrize(
    ("length", "seconds"),
    [
        ("PT10M", 600),
        ("PT15M", 900),
        ("PT30M", 1800),
        ("PT60M", 3600),
        ("PT1H", 3600),
        ("P1D", 86400),
    ],
)
def test_interval_lengths(length: str, seconds: int) -> None:
    """ISO 8601 interval lengths become seconds and set each sample's start and length."""
    assert duration_s(length) == seconds
    if seconds < 86400:
        body = _v2([{"v": "600", "d": "2025-01-15 12:00:00", "p": length}])
        (sample,) = parse_v2(body, "load_curve", "consumption")[0].samples
        assert sample.interval_s == seconds
        assert sample.start == _z("2025-01-15T11:00") - timedelta(seconds=seconds)


def test_bad_interval_length_is_a_data_error() -> None:
    """An unknown interval length is refused rather than guessed."""
    with pytest.raises(DataError):
        duration_s("30 minutes")


def test_direction_selects_the_grandeur() -> None:
    """Only the grandeur of the asked direction is read (CONS vs PROD)."""
    body = _v2([{"v": "1", "d": "2025-01-15 12:00:00", "p": "PT30M"}], grandeur="PROD")
    assert parse_v2(body, "load_curve", "consumption")[0].samples == []
    assert len(parse_v2(body, "load_curve", "production")[0].samples) == 1


def test_daily_values_are_stamped_at_local_midnight_with_true_day_length() -> None:
    """A daily value is stamped at Paris midnight; the fall-back day lasts 25 hours."""
    body = _v2(
        [{"v": "12000", "d": "2025-10-26", "p": "P1D"}, {"v": None, "d": "2025-10-27", "p": "P1D"}]
    )
    series, _ = parse_v2(body, "daily", "consumption")
    first, second = series.samples
    assert first.start == _z("2025-10-25T22:00") and first.interval_s == 25 * 3600
    assert first.value == 12000.0 and second.value is None
    assert second.start == _z("2025-10-26T23:00")


def test_max_power_is_stamped_at_the_peak() -> None:
    """Max power keeps the local moment of the peak, converted to UTC."""
    body = _v2([{"v": "5400", "d": "2025-07-01 19:12:34", "p": "P1D"}])
    (sample,) = parse_v2(body, "max_power", "consumption")[0].samples
    assert sample.start == _z("2025-07-01T17:12:34") and sample.value == 5400.0


def test_v5_wrapped_and_flat_give_the_same_series() -> None:
    """The v5 metering_data body and the flattened Conso API body parse to one series."""
    reading = {
        "usage_point_id": "22516914714270",
        "start": "2025-10-26",
        "end": "2025-10-27",
        "quality": "BRUT",
        "reading_type": {"unit": "W", "measurement_kind": "power", "aggregate": "average"},
        "interval_reading": [
            {
                "value": "100",
                "date": "2025-10-26 02:30:00",
                "interval_length": "PT30M",
                "measure_type": "B",
            },
            {
                "value": "200",
                "date": "2025-10-26 02:30:00",
                "interval_length": "PT30M",
                "measure_type": "B",
            },
        ],
    }
    flat, _ = parse_v5(V5Reading.model_validate(reading), "load_curve", "consumption")
    wrapped, _ = parse_v5(
        V5Wrapped.model_validate({"meter_reading": reading}).meter_reading,
        "load_curve",
        "consumption",
    )
    assert flat == wrapped
    assert [s.start for s in flat.samples] == [_z("2025-10-26T00:00"), _z("2025-10-26T01:00")]


def test_wrong_types_are_refused() -> None:
    """A value that is not a number (or null) fails validation instead of becoming data."""
    with pytest.raises(ValueError):
        V2Response.model_validate(
            {
                "idPrm": "1",
                "grandeur": [
                    {"grandeurMetier": "CONS", "points": [{"v": "abc", "d": "2025-01-01"}]}
                ],
            }
        )
    with pytest.raises(ValueError):
        V2Response.model_validate({"idPrm": "1", "grandeur": "CONS"})


def test_offpeak_ranges_cross_midnight_and_tag_by_slot_start() -> None:
    """A slot is HC when its local start is in a range, start included and end excluded."""
    ranges = [parse_offpeak("22:00-06:00"), parse_offpeak("12h30-14h30")]
    assert period_of(_z("2025-01-15T21:00"), ranges) == "HC"  # 22:00 local
    assert period_of(_z("2025-01-15T20:30"), ranges) == "HP"  # 21:30 local
    assert period_of(_z("2025-01-16T04:30"), ranges) == "HC"  # 05:30 local
    assert period_of(_z("2025-01-16T05:00"), ranges) == "HP"  # 06:00 local: end excluded
    assert period_of(_z("2025-07-16T10:30"), ranges) == "HC"  # 12:30 local (CEST)
    assert period_of(_z("2025-07-16T10:30"), []) == "BASE"
    assert ranges[0].contains(time(23, 59)) and not ranges[0].contains(time(6, 0))


def test_config_refuses_bad_offpeak_and_missing_credentials() -> None:
    """Config validation names bad ranges and missing credentials."""
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        EnedisConfig.model_validate(
            {
                "client_id": "a",
                "client_secret": "b",
                "offpeak_hours": ["late"],
                "prms": [{"prm": "1" * 14}],
            }
        )
    with pytest.raises(ValueError, match="client_id"):
        EnedisConfig.model_validate({"prms": [{"prm": "1" * 14}]})
    with pytest.raises(ValueError, match="token"):
        EnedisConfig.model_validate({"mode": "conso_api", "prms": [{"prm": "1" * 14}]})
