"""The declarative status/grid tables and the point shapes they produce."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.bluecurrent.mapping import GRID_FIELDS, STATUS_FIELDS, StatusMapper, power_kw
from collectors.bluecurrent.models import DATA_MESSAGE


def status(**data: object) -> dict:
    base = {
        "actual_v1": 230.0, "actual_v2": 231.0, "actual_v3": 229.0,
        "actual_p1": 16, "actual_p2": 15, "actual_p3": 0,
        "actual_kwh": 12.5, "activity": "charging", "vehicle_status": "C",
        "max_usage": 32, "smartcharging_max_usage": 16, "max_offline": 8, "total_cost": 3.1,
        "start_datetime": "20260301 08:00:00", "stop_datetime": "", "offline_since": "",
    }  # fmt: skip
    base.update(data)
    return DATA_MESSAGE.validate_python({"object": "CH_STATUS", "evse_id": "BCU1", "data": base})


def test_tables_cover_every_documented_field_with_units() -> None:
    """The tables name every field of the data model, each with its unit."""
    fields = {spec.field: spec.unit for spec in STATUS_FIELDS}
    assert fields == {
        "voltage_v1": "V", "voltage_v2": "V", "voltage_v3": "V",
        "current_a1": "A", "current_a2": "A", "current_a3": "A",
        "energy_kwh": "kWh", "max_usage_a": "A", "smartcharging_max_usage_a": "A",
        "max_offline_a": "A", "total_cost_eur": "EUR", "activity": "", "vehicle_status": "",
    }  # fmt: skip
    assert {spec.field for spec in GRID_FIELDS} == {
        "current_a1", "current_a2", "current_a3", "max_install_a", "max_reserved_a",
    }  # fmt: skip


def test_status_point_maps_values_and_derives_power() -> None:
    """CH_STATUS becomes one bluecurrent_status point; power is the sum of V x A per phase."""
    point = StatusMapper().status_point(status(), 1_000)
    assert point.measurement == "bluecurrent_status"
    assert point.tags == {"evse_id": "BCU1"}
    assert point.time_ns == 1_000
    assert point.fields["current_a1"] == 16.0 and type(point.fields["current_a1"]) is float
    assert point.fields["power_kw"] == pytest.approx((230 * 16 + 231 * 15) / 1000)
    assert point.fields["total_cost_eur"] == 3.1
    assert point.fields["vehicle_status"] == "C"


def test_missing_optional_values_leave_fields_out() -> None:
    """A null max_usage or a missing total_cost is left out rather than stored as 0."""
    message = status(max_usage=None)
    del message["data"]["total_cost"]
    point = StatusMapper().status_point(message, 1)
    assert "max_usage_a" not in point.fields and "total_cost_eur" not in point.fields
    assert point.fields["max_offline_a"] == 8.0


def test_same_tick_statuses_get_distinct_timestamps() -> None:
    """Two statuses of one charge point in the same nanosecond do not overwrite each other."""
    mapper = StatusMapper()
    first = mapper.status_point(status(), 500)
    second = mapper.status_point(status(actual_kwh=13.0), 500)
    third = mapper.status_point(status(), 400)
    assert [first.time_ns, second.time_ns, third.time_ns] == [500, 501, 502]
    other = mapper.status_point(DATA_MESSAGE.validate_python({**status(), "evse_id": "BCU2"}), 500)
    assert other.time_ns == 500


def test_bad_date_is_a_value_error() -> None:
    """A status date not in "%Y%m%d %H:%M:%S" is refused (the frame is malformed)."""
    with pytest.raises(ValueError):
        StatusMapper().status_point(status(start_datetime="2026-03-01T08:00"), 1)


def test_status_dates_in_amsterdam_unless_an_offset_is_given() -> None:
    """Dates are Europe/Amsterdam local time, an explicit offset wins, "" is none."""
    dates = StatusMapper().status_dates(
        status(start_datetime="20260701 10:00:00", stop_datetime="20260701 10:00:00+0000")
    )
    assert dates["start_datetime"] == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert dates["stop_datetime"] == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert dates["offline_since"] is None


def test_grid_status_names_its_charge_point_from_the_grid_id() -> None:
    """GRID_STATUS without evse_id is tagged with the charge point of its GRID- id."""
    message = DATA_MESSAGE.validate_python(
        {
            "object": "GRID_STATUS",
            "data": {"id": "GRID-BCU7", "grid_actual_p1": 1, "grid_actual_p2": 2,
                     "grid_actual_p3": 3, "grid_max_install": 40, "grid_max_reserved": 25},
        }
    )  # fmt: skip
    point = StatusMapper().grid_point(message, 9)
    assert point is not None and point.tags == {"evse_id": "BCU7"}
    assert point.fields == {
        "current_a1": 1.0, "current_a2": 2.0, "current_a3": 3.0,
        "max_install_a": 40.0, "max_reserved_a": 25.0,
    }  # fmt: skip


def test_grid_current_is_read_from_the_top_level() -> None:
    """Pushed GRID_CURRENT carries its phase currents at the top level."""
    message = DATA_MESSAGE.validate_python(
        {"object": "GRID_CURRENT", "evse_id": "BCU3", "grid_actual_p1": 4,
         "grid_actual_p2": 5, "grid_actual_p3": 6}
    )  # fmt: skip
    point = StatusMapper().grid_point(message, 9)
    assert point is not None and point.fields == {
        "current_a1": 4.0,
        "current_a2": 5.0,
        "current_a3": 6.0,
    }


def test_grid_status_without_any_charge_point_is_none() -> None:
    """A grid status naming no charge point gives no point (it cannot be tagged)."""
    message = DATA_MESSAGE.validate_python(
        {"object": "GRID_STATUS", "data": {"id": "X", "grid_actual_p1": 1,
                                           "grid_actual_p2": 2, "grid_actual_p3": 3}}
    )  # fmt: skip
    assert StatusMapper().grid_point(message, 1) is None


def test_power_is_zero_without_current() -> None:
    """No current on any phase means 0 kW whatever the voltage."""
    assert power_kw(status(actual_p1=0, actual_p2=0, actual_p3=0)["data"]) == 0.0
