"""Validation of BlueCurrent payloads: strict numbers on the websocket, the REST quirks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from collectors.bluecurrent.models import (
    DATA_MESSAGE,
    ChargeCardsMessage,
    ChargePointStatusResponse,
    Transaction,
    TransactionsResponse,
)

GOOD = (
    '{"object":"CH_STATUS","evse_id":"BCU1","data":{"actual_v1":230,"actual_v2":230,'
    '"actual_v3":230,"actual_p1":1,"actual_p2":1,"actual_p3":1,"actual_kwh":1.5,'
    '"activity":"charging","vehicle_status":"C","extra_key":true}}'
)


def test_a_status_frame_validates_from_raw_json() -> None:
    """A CH_STATUS frame validates straight from JSON; ints become floats, extras are ignored."""
    message = DATA_MESSAGE.validate_json(GOOD)
    assert message["data"]["actual_p1"] == 1.0 and type(message["data"]["actual_p1"]) is float
    assert "extra_key" not in message["data"]


@pytest.mark.parametrize(
    "bad",
    ['"230"', "true", "NaN", "1e999", "null", "[230]"],
)
def test_wrong_number_types_are_refused(bad: str) -> None:
    """Strings, booleans, NaN, infinity, null or lists where a voltage belongs are refused."""
    with pytest.raises(ValidationError):
        DATA_MESSAGE.validate_json(GOOD.replace('"actual_v1":230', f'"actual_v1":{bad}'))


def test_unknown_and_missing_objects_are_refused() -> None:
    """Frames of another object, or without one, do not pass the data adapter."""
    for frame in ('{"object":"HELLO"}', '{"evse_id":"BCU1"}', "[1]", "not json"):
        with pytest.raises(ValidationError):
            DATA_MESSAGE.validate_json(frame)


def test_transaction_string_costs_null_names_and_dates() -> None:
    """Cost fields and socket_id as strings, names as null, dates in Amsterdam time."""
    tx = Transaction.model_validate(
        {
            "transaction_id": 12345678, "chargepoint_id": "BCU1", "evse_name": None,
            "started_at": "01-07-2023 12:34:56", "end_time": "01-07-2023 14:00:00",
            "kwh": "12.34", "card_name": None, "total_costs": "5.97",
            "total_costs_ex_vat": 4.93, "vat": 21, "currency": "EUR", "socket_id": 2,
        }
    )  # fmt: skip
    assert tx.kwh == 12.34 and tx.total_costs == 5.97 and tx.socket_id == "2"
    assert tx.started_at == datetime(2023, 7, 1, 10, 34, 56, tzinfo=UTC)
    assert tx.end_time == datetime(2023, 7, 1, 12, 0, tzinfo=UTC)


def test_running_transaction_has_no_end() -> None:
    """An empty end_time (transaction still running) is None; an empty cost is None."""
    tx = Transaction.model_validate(
        {"transaction_id": "9", "chargepoint_id": "BCU1", "started_at": "01-01-2026 10:00:00",
         "end_time": "", "total_costs": ""}
    )  # fmt: skip
    assert tx.end_time is None and tx.total_costs is None


def test_transaction_with_a_bad_date_is_refused() -> None:
    """A date in another format is a validation error, not a silent None."""
    with pytest.raises(ValidationError):
        Transaction.model_validate(
            {"transaction_id": 1, "chargepoint_id": "B", "started_at": "2026-01-01 10:00"}
        )


def test_transactions_page_shape() -> None:
    """The page wrapper: next_page null on the last page."""
    page = TransactionsResponse.model_validate(
        {"data": {"current_page": 2, "next_page": None, "max_per_page": 25, "total_pages": 2,
                  "total_transactions": 26, "transactions": []}}
    ).data  # fmt: skip
    assert page.next_page is None and page.total_pages == 2


def test_rest_status_dates_are_parsed() -> None:
    """The REST status parses its dates like the websocket does."""
    status = ChargePointStatusResponse.model_validate(
        {"data": {"evse_id": "BCU1", "start_datetime": "20260115 12:00:00",
                  "stop_datetime": "", "offline_since": "", "total_cost": "9.93"}}
    ).data  # fmt: skip
    assert status.start_datetime == datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
    assert status.stop_datetime is None and status.total_cost == 9.93


def test_charge_cards_dates() -> None:
    """Charge card dates are ISO dates; an empty invalidation date is None."""
    cards = ChargeCardsMessage.model_validate(
        {"object": "CHARGE_CARDS", "cards": [{"uid": "A1", "id": "NL-1", "valid": 1,
         "date_created": "2023-06-27", "date_became_invalid": ""}]}
    ).cards  # fmt: skip
    assert cards[0].date_created is not None and cards[0].date_became_invalid is None
