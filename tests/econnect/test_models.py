"""Reading station records leniently: what is kept, what is a bad record."""

from __future__ import annotations

from datetime import datetime

import pytest

from collectors.econnect.models import Station, parse_install_date, read_stations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-04", datetime(2021, 3, 4)),
        ("2021-03-04T08:15:00Z", datetime(2021, 3, 4, 8, 15)),
        ("2021-03-04T10:15:00+02:00", datetime(2021, 3, 4, 8, 15)),
        ("2021-03-04T08:15:00.250", datetime(2021, 3, 4, 8, 15, 0, 250000)),
        ("", None),
        ("   ", None),
        ("04/03/2021", None),
        ("sometime in 2025", None),
        ("2021-13-01", None),
    ],
)
def test_install_date_parsing(text: str, expected: datetime | None) -> None:
    """ISO 8601 dates and date-times are read (as naive UTC); anything else is None."""
    assert parse_install_date(text) == expected


def test_missing_and_null_columns_become_empty_and_the_station_is_kept() -> None:
    """A station without modelInfo/type/state/installDate (or with nulls) is kept with ""."""
    parsed = read_stations([(0, [{"id": 12, "modelInfo": None}, {"id": "B", "state": None}])])
    assert parsed.bad == []
    first, second = parsed.stations
    assert (first.id, first.model_info, first.type, first.state) == ("12", "", "", "")
    assert first.install_date is None and not first.date_problem
    assert second.install_date_iso == ""


def test_unreadable_date_is_kept_empty_and_counted() -> None:
    """An unreadable installDate leaves the station in, its date empty, listed as a problem."""
    parsed = read_stations([(0, [{"id": "A", "installDate": "31/12/2020", "state": "OK"}])])
    assert len(parsed.stations) == 1 and parsed.bad == []
    assert parsed.stations[0].install_date_iso == ""
    assert [s.id for s in parsed.date_problems] == ["A"]


def test_bad_records_are_listed_with_their_place_and_reason() -> None:
    """Wrong types, a missing id, a non-object and a duplicate id are skipped and listed."""
    records = [
        {"id": "OK-1", "modelInfo": "M", "state": "S", "type": "AC"},
        {"modelInfo": "M"},
        {"id": "T-1", "modelInfo": 42},
        {"id": "T-2", "installDate": 20210304},
        ["not", "an", "object"],
        {"id": True},
        {"id": "OK-1", "modelInfo": "M"},
    ]
    parsed = read_stations([(3, records)])
    assert [s.id for s in parsed.stations] == ["OK-1"]
    problems = [(b.page, b.position, b.station, b.problem) for b in parsed.bad]
    assert problems == [
        (3, 1, "", "id: missing"),
        (3, 2, "T-1", "modelInfo: expected a string, got int"),
        (3, 3, "T-2", "installDate: expected a string, got int"),
        (3, 4, "", "not an object (list)"),
        (3, 5, "True", "id: missing station id"),
        (3, 6, "OK-1", "duplicate station id"),
    ]
    assert parsed.bad[1].record.startswith('{"id": "T-1"')


def test_extra_fields_are_kept_in_the_raw_record() -> None:
    """Fields beyond the report's four are preserved for the snapshot."""
    record = {"id": "A", "address": {"city": "Paris"}, "connectors": []}
    parsed = read_stations([(0, [record])])
    assert parsed.raw == [record]
    assert Station.model_validate(record).model_extra == {
        "address": {"city": "Paris"},
        "connectors": [],
    }
