"""Pydantic shapes of everything BlueCurrent sends: websocket messages and REST answers.

The three pushed data messages (`CH_STATUS`, `GRID_STATUS`, `GRID_CURRENT`) are TypedDicts
behind one discriminated `TypeAdapter` (`DATA_MESSAGE`) that validates raw frames straight
from JSON: that is the hot path, tens of thousands of frames a second. Numbers are strict
(a string, a boolean, NaN or infinity where a number belongs is a malformed frame). Every
other message is a regular model, validated after a plain `json.loads`.

Dates: the websocket says "%Y%m%d %H:%M:%S" in Europe/Amsterdam unless an offset is given,
"" for none; REST transactions say "%d-%m-%Y %H:%M:%S" (Amsterdam). Both become aware UTC
datetimes. REST cost fields and `socket_id` may arrive as strings, names as null.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from collectors.bluecurrent.backoff import AMSTERDAM

__all__ = [
    "DATA_MESSAGE",
    "Account",
    "ChStatusData",
    "ChStatusMessage",
    "ChargeCard",
    "ChargeCardsMessage",
    "ChargePoint",
    "ChargePointSettings",
    "ChargePointStatus",
    "ChargePointStatusResponse",
    "ChargePointsMessage",
    "Contract",
    "ContractsResponse",
    "ErrorMessage",
    "Grid",
    "GridCurrentMessage",
    "GridStatusData",
    "GridStatusMessage",
    "GridsResponse",
    "Incoming",
    "StatusApiToken",
    "Sustainability",
    "Transaction",
    "TransactionsPage",
    "TransactionsResponse",
    "parse_status_datetime",
    "parse_transaction_datetime",
]

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Text = Annotated[str, Field(strict=True)]
_IGNORE = ConfigDict(extra="ignore")
_ALLOW = ConfigDict(extra="allow")


def parse_status_datetime(value: str | None) -> datetime | None:
    """A websocket date ("%Y%m%d %H:%M:%S", Amsterdam unless it carries an offset) in UTC."""
    if not value:
        return None
    if "+" in value or "-" in value or value.endswith("Z"):
        moment = datetime.strptime(value, "%Y%m%d %H:%M:%S%z")
    else:
        moment = datetime.strptime(value, "%Y%m%d %H:%M:%S").replace(tzinfo=AMSTERDAM)
    return moment.astimezone(UTC)


def parse_transaction_datetime(value: Any) -> datetime | None:
    """A REST transaction date ("%d-%m-%Y %H:%M:%S", Amsterdam) in UTC; "" or null is None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=AMSTERDAM).astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {type(value).__name__}")
    return datetime.strptime(value, "%d-%m-%Y %H:%M:%S").replace(tzinfo=AMSTERDAM).astimezone(UTC)


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


def _to_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


StatusDate = Annotated[datetime | None, BeforeValidator(parse_status_datetime)]
TransactionDate = Annotated[datetime | None, BeforeValidator(parse_transaction_datetime)]
LooseNumber = Annotated[float | None, BeforeValidator(_blank_to_none)]
LooseText = Annotated[str | None, BeforeValidator(_to_text)]

# --- hot path: pushed data messages -------------------------------------------------------


class ChStatusData(TypedDict):
    """`CH_STATUS.data`: phase voltages (V) and currents (A), kWh, limits (A), cost (EUR)."""

    __pydantic_config__ = _IGNORE  # type: ignore[misc]
    actual_v1: Number
    actual_v2: Number
    actual_v3: Number
    actual_p1: Number
    actual_p2: Number
    actual_p3: Number
    actual_kwh: Number
    activity: Text
    vehicle_status: Text
    max_usage: NotRequired[Number | None]
    smartcharging_max_usage: NotRequired[Number | None]
    max_offline: NotRequired[Number | None]
    total_cost: NotRequired[Number | None]
    start_datetime: NotRequired[Text | None]
    stop_datetime: NotRequired[Text | None]
    offline_since: NotRequired[Text | None]


class ChStatusMessage(TypedDict):
    __pydantic_config__ = _IGNORE  # type: ignore[misc]
    object: Literal["CH_STATUS"]
    evse_id: Text
    data: ChStatusData


class GridStatusData(TypedDict):
    """`GRID_STATUS.data`: grid currents per phase and the installation limits (A)."""

    __pydantic_config__ = _IGNORE  # type: ignore[misc]
    id: NotRequired[Text]
    grid_actual_p1: Number
    grid_actual_p2: Number
    grid_actual_p3: Number
    grid_max_install: NotRequired[Number | None]
    grid_max_reserved: NotRequired[Number | None]


class GridStatusMessage(TypedDict):
    __pydantic_config__ = _IGNORE  # type: ignore[misc]
    object: Literal["GRID_STATUS"]
    evse_id: NotRequired[Text]
    data: GridStatusData


class GridCurrentMessage(TypedDict):
    """Pushed `GRID_CURRENT`: the phase currents at the top level."""

    __pydantic_config__ = _IGNORE  # type: ignore[misc]
    object: Literal["GRID_CURRENT"]
    evse_id: Text
    grid_actual_p1: Number
    grid_actual_p2: Number
    grid_actual_p3: Number


DataMessage = Annotated[
    ChStatusMessage | GridStatusMessage | GridCurrentMessage, Field(discriminator="object")
]
DATA_MESSAGE: TypeAdapter[ChStatusMessage | GridStatusMessage | GridCurrentMessage] = TypeAdapter(
    DataMessage
)
"""Validates a raw frame (str/bytes) into one of the three data messages."""

# --- control and request/response messages ------------------------------------------------


class Incoming(BaseModel):
    """Any frame's envelope: its `object` and an optional `error`."""

    model_config = _ALLOW
    object: str
    error: Any = None


class StatusApiToken(BaseModel):
    """Answer to `VALIDATE_API_TOKEN`."""

    model_config = _IGNORE
    object: Literal["STATUS_API_TOKEN"]
    success: bool
    token: str | None = None
    customer_id: str | int | None = None
    error: Any = None


class ErrorMessage(BaseModel):
    """`{"object":"ERROR","error":N,"message":...}`: 0 unknown command, 1 invalid token,
    2 not authorized, 9 unknown, 42 request limit."""

    model_config = _IGNORE
    object: Literal["ERROR"]
    error: int | str
    message: str = ""


class ChargePoint(BaseModel):
    """One entry of `CHARGE_POINTS.data` (more keys than these are kept, not required)."""

    model_config = _ALLOW
    evse_id: str
    name: str | None = None
    model_type: str | None = None
    chargepoint_type: str | None = None
    activity: str | None = None
    smart_charging: bool | None = None
    is_cable: bool | None = None


class ChargePointsMessage(BaseModel):
    model_config = _IGNORE
    object: Literal["CHARGE_POINTS"]
    data: list[ChargePoint]


class ChargePointSettings(BaseModel):
    """`CH_SETTINGS.data`: plug-and-charge, public charging, cards, LED settings..."""

    model_config = _ALLOW
    evse_id: str
    model_type: str | None = None
    chargepoint_type: str | None = None
    smart_charging: bool | None = None
    plug_and_charge: Any = None
    public_charging: Any = None


class ChSettingsMessage(BaseModel):
    model_config = _IGNORE
    object: Literal["CH_SETTINGS"]
    data: ChargePointSettings


class Account(BaseModel):
    """`ACCOUNT`: the account's names and login (fields at the top level)."""

    model_config = _ALLOW
    object: Literal["ACCOUNT"] = "ACCOUNT"
    full_name: str | None = None
    email: str | None = None
    login: str | None = None


class ChargeCard(BaseModel):
    model_config = _ALLOW
    uid: str
    id: str
    name: str | None = None
    customer_name: str | None = None
    valid: int | bool | None = None
    date_created: date | None = None
    date_modified: date | None = None
    date_became_invalid: Annotated[date | None, BeforeValidator(_blank_to_none)] = None


class ChargeCardsMessage(BaseModel):
    model_config = _IGNORE
    object: Literal["CHARGE_CARDS"]
    cards: list[ChargeCard]


class Sustainability(BaseModel):
    """`SUSTAINABILITY_STATUS`: trees saved and kg of CO2 avoided, all charge points."""

    model_config = _IGNORE
    object: Literal["SUSTAINABILITY_STATUS"] = "SUSTAINABILITY_STATUS"
    trees: float
    co2: float


# --- REST ----------------------------------------------------------------------------------


class ChargePointStatus(BaseModel):
    """`GET /chargepointstatus` `data` (the websocket status fields, dates parsed)."""

    model_config = _ALLOW
    evse_id: str | None = None
    activity: str | None = None
    vehicle_status: str | None = None
    actual_v1: float | None = None
    actual_v2: float | None = None
    actual_v3: float | None = None
    actual_p1: float | None = None
    actual_p2: float | None = None
    actual_p3: float | None = None
    actual_kwh: float | None = None
    max_usage: float | None = None
    smartcharging_max_usage: float | None = None
    max_offline: float | None = None
    total_cost: LooseNumber = None
    start_datetime: StatusDate = None
    stop_datetime: StatusDate = None
    offline_since: StatusDate = None


class ChargePointStatusResponse(BaseModel):
    model_config = _IGNORE
    data: ChargePointStatus


class Contract(BaseModel):
    model_config = _ALLOW
    contract_id: str
    contact_email: str | None = None
    subscription_type: str | None = None
    beneficiary_name: str | None = None
    iban_beneficiary: str | None = None


class ContractsResponse(BaseModel):
    model_config = _IGNORE
    contracts: list[Contract]


class Grid(BaseModel):
    model_config = _ALLOW
    id: str
    smart_charging: bool | None = None
    address: dict[str, Any] | None = None


class GridsResponse(BaseModel):
    model_config = _IGNORE
    grids: list[Grid]


class Transaction(BaseModel):
    """One transaction of `POST /gettransactions` (costs and socket_id may be strings)."""

    model_config = _ALLOW
    transaction_id: int | str
    chargepoint_id: str
    chargepoint_type: str | None = None
    evse_name: str | None = None
    started_at: TransactionDate
    end_time: TransactionDate = None
    kwh: LooseNumber = None
    card_id: str | None = None
    card_name: str | None = None
    total_costs: LooseNumber = None
    total_costs_ex_vat: LooseNumber = None
    vat: LooseNumber = None
    currency: str | None = None
    socket_id: LooseText = None


class TransactionsPage(BaseModel):
    model_config = _IGNORE
    current_page: int
    next_page: int | None = None
    max_per_page: int = 25
    total_pages: int = 0
    total_transactions: int | None = None
    transactions: list[Transaction]


class TransactionsResponse(BaseModel):
    model_config = _IGNORE
    data: TransactionsPage
