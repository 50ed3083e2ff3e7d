"""Payloads of the eConnect Masterdata API and how one station record is read.

A page of `GET /masterdata/cpos/{bp}/chargingstations` is a Spring-style page whose `content`
is a list of station objects. The page itself must be well formed (`DataError` otherwise);
the stations in it are read one by one and leniently, like the seed script:

- a missing `modelInfo`, `installDate`, `type` or `state` (or null) becomes "" and the
  station is kept;
- an `installDate` that is not ISO 8601 becomes empty and is counted as a date problem;
- a record that is not an object, has no usable `id`, or carries a wrong type in one of those
  fields is a *bad record*: skipped, counted and listed, never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

__all__ = [
    "BadRecord",
    "Page",
    "ParsedStations",
    "Station",
    "parse_install_date",
    "read_stations",
]


def _text(value: Any) -> str:
    """A string field: null → "", a string as is, anything else is a wrong type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _identifier(value: Any) -> str:
    """The station id: a non-empty string or an integer (kept as its decimal text)."""
    if isinstance(value, bool) or value is None:
        raise ValueError("missing station id")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"station id must be a non-empty string, got {type(value).__name__}")


Text = Annotated[str, BeforeValidator(_text)]
Identifier = Annotated[str, BeforeValidator(_identifier)]


def parse_install_date(text: str) -> datetime | None:
    """An ISO 8601 date or date-time as a naive UTC datetime; None when empty or unparseable.

    Aware values are converted to UTC; naive ones are taken as they are (as pandas does)."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class Station(BaseModel):
    """One charging station: the four columns the report uses, plus whatever else came."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    id: Identifier
    model_info: Text = Field("", alias="modelInfo")
    install_date_text: Text = Field("", alias="installDate")
    type: Text = ""
    state: Text = ""

    @property
    def install_date(self) -> datetime | None:
        """The parsed install date (naive UTC), None when missing or unparseable."""
        return parse_install_date(self.install_date_text)

    @property
    def install_date_iso(self) -> str:
        """The install date as ISO text ("YYYY-MM-DD" at midnight), "" when unknown."""
        moment = self.install_date
        if moment is None:
            return ""
        if moment.time() == datetime.min.time():
            return moment.date().isoformat()
        return moment.isoformat() + "Z"

    @property
    def date_problem(self) -> bool:
        """True when an install date was given but could not be read."""
        return bool(self.install_date_text.strip()) and self.install_date is None


class Page(BaseModel):
    """A page of stations; only `content` matters, the Spring paging fields are optional."""

    model_config = ConfigDict(extra="allow")

    content: list[Any]
    number: int | None = None
    total_pages: int | None = Field(None, alias="totalPages")
    last: bool | None = None


@dataclass(frozen=True)
class BadRecord:
    """A record that was skipped: where it was, its id if readable, why, and its text."""

    page: int
    position: int
    station: str
    problem: str
    record: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "position": self.position,
            "station": self.station,
            "problem": self.problem,
            "record": self.record,
        }


@dataclass
class ParsedStations:
    """Stations read from one or more pages: the valid ones (raw and typed) and the rest."""

    stations: list[Station] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, page: int, position: int, record: Any) -> None:
        """Read one record; a bad one is listed in `bad`, never raised."""
        if not isinstance(record, dict):
            self._reject(page, position, record, "", f"not an object ({type(record).__name__})")
            return
        try:
            station = Station.model_validate(record)
        except ValidationError as exc:
            self._reject(page, position, record, _raw_id(record), _problem(exc))
            return
        if station.id in self._seen:
            self._reject(page, position, record, station.id, "duplicate station id")
            return
        self._seen.add(station.id)
        self.stations.append(station)
        self.raw.append(record)

    def _reject(self, page: int, position: int, record: Any, ident: str, problem: str) -> None:
        text = json.dumps(record, ensure_ascii=False, default=str)
        self.bad.append(BadRecord(page, position, ident, problem, text[:500]))

    @property
    def date_problems(self) -> list[Station]:
        """Stations kept with an install date that could not be read."""
        return [station for station in self.stations if station.date_problem]


def read_stations(pages: list[tuple[int, list[Any]]]) -> ParsedStations:
    """Read the records of (page number, content) pairs, in order."""
    parsed = ParsedStations()
    for number, content in pages:
        for position, record in enumerate(content):
            parsed.add(number, position, record)
    return parsed


def _raw_id(record: dict[str, Any]) -> str:
    value = record.get("id")
    return value if isinstance(value, str) else "" if value is None else str(value)[:60]


def _problem(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "record"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "missing"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
