"""Typed points and InfluxDB line protocol: encoding and parsing.

A `Point` is the one record type every sink understands. `encode()` turns it into a line of
InfluxDB line protocol with the escaping rules of
https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/ :

- measurement: escape commas and spaces;
- tag keys, tag values, field keys: escape commas, equals signs and spaces;
- string field values: double quotes, escape double quotes and backslashes;
- integers get an ``i`` suffix, booleans are ``true``/``false``, floats are written in
  orjson's shortest round-trip form (``0.00001``, ``2.5e-7``, ``1e+16``, ``-0.0``: like
  ``repr`` but for some exponents; any form parses back to the same float).

NaN and infinities cannot be represented in line protocol: they raise `PointError` instead of
being silently dropped. `parse()` is the exact inverse, used by the embedded store and tests.
`daemon.encoder.Encoder` is `encode()` for the hot path (same lines, same errors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

__all__ = [
    "FieldValue",
    "Point",
    "PointError",
    "encode",
    "parse",
    "split_lines",
    "to_ns",
]

FieldValue = float | int | bool | str


class PointError(ValueError):
    """A point that cannot be written (no fields, NaN, empty key, bad type)."""


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch for an aware datetime (naive datetimes are refused)."""
    if moment.tzinfo is None:
        raise PointError(f"naive datetime {moment!r}: timestamps must carry a time zone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Point:
    """One InfluxDB point: measurement, tags, fields and a timestamp in nanoseconds (UTC)."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int

    @classmethod
    def at(
        cls,
        measurement: str,
        moment: datetime,
        tags: Mapping[str, str],
        fields: Mapping[str, FieldValue],
        offset_ns: int = 0,
    ) -> Point:
        """A point stamped at an aware datetime, plus an optional sub-second offset."""
        return cls(measurement, tags, fields, to_ns(moment) + offset_ns)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ns // 1_000_000_000, UTC).replace(
            microsecond=(self.time_ns % 1_000_000_000) // 1000
        )


_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_SPECIAL = frozenset(", =")
_FORBIDDEN = frozenset("\n\r\\")
# InfluxDB skips tabs and NULs before a line and its field set; '#' starts a comment
_BAD_START = frozenset("#\t\x00")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# InfluxDB's timestamp range (models.MinNanoTime / MaxNanoTime)
_TIME_MIN, _TIME_MAX = -9_223_372_036_854_775_806, 9_223_372_036_854_775_806


def _check_name(text: str, what: str) -> None:
    if not text:
        raise PointError(f"empty {what}")
    if not _FORBIDDEN.isdisjoint(text):
        raise PointError(f"{what} {text!r} contains a newline or a backslash")


def _escape_key(text: str, what: str) -> str:
    if text and _SPECIAL.isdisjoint(text) and _FORBIDDEN.isdisjoint(text):
        return text
    _check_name(text, what)
    return text.translate(_KEY_ESCAPES)


def _field_value(key: str, value: FieldValue) -> str:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise PointError(f"field {key!r} is {value!r}: line protocol has no NaN or inf")
        return orjson.dumps(value).decode()
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise PointError(f"field {key!r} is {value!r}: out of the int64 range")
        return f"{value}i"
    if kind is str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'  # type: ignore[union-attr]
    raise PointError(f"field {key!r} has unsupported type {kind.__name__}")


def encode(point: Point) -> str:
    """One line of line protocol (no trailing newline) for `point`.

    Raises `PointError` for what InfluxDB would reject or misread: no fields, NaN/inf, a
    newline or backslash in a name or tag, an empty key, a key named ``time``, a measurement
    starting with ``#``, a tab or NUL (InfluxDB would strip them), the same for the first
    field key, an integer or timestamp outside InfluxDB's int64 range, text that is
    not valid UTF-8 (lone surrogates). Tags with an empty value are left out, as InfluxDB does.
    """
    head = point.measurement
    if not head or head[0] in _BAD_START or not _FORBIDDEN.isdisjoint(head):
        _check_name(head, "measurement")
        raise PointError(f"measurement {head!r} starts with '#', a tab or NUL")
    if not _SPECIAL.isdisjoint(head):
        head = head.translate(_MEASUREMENT_ESCAPES)
    if not point.fields:
        raise PointError(f"point {point.measurement!r} has no fields")
    parts = [head]
    tags = point.tags
    for key in sorted(tags):
        value = tags[key]
        if value == "":
            continue
        if key == "time":
            raise PointError("a tag cannot be named 'time'")
        parts.append(f"{_escape_key(key, 'tag key')}={_escape_key(value, 'tag value')}")
    fields = []
    for key, value in point.fields.items():
        if key == "time":
            raise PointError("a field cannot be named 'time'")
        fields.append(f"{_escape_key(key, 'field key')}={_field_value(key, value)}")
    if fields[0][0] in "\t\x00":
        raise PointError(f"field key {fields[0]!r} starts with a tab or NUL")
    if not _TIME_MIN <= point.time_ns <= _TIME_MAX:
        raise PointError(f"timestamp {point.time_ns!r} ns is out of InfluxDB's range")
    line = f"{','.join(parts)} {','.join(fields)} {point.time_ns}"
    if not line.isascii():
        try:
            line.encode()
        except UnicodeEncodeError as exc:
            raise PointError(f"point {point.measurement!r} is not valid UTF-8: {exc}") from None
    return line


def _scan_series(text: str, start: int) -> int:
    """Index of the unescaped space that ends the series key starting at `start`."""
    index = start
    while True:
        char = text[index]
        if char == "\\":
            index += 2
        elif char == " ":
            return index
        else:
            index += 1


def _scan_fields(text: str, start: int) -> int:
    """Index of the unescaped space, outside quotes, that ends the field set.

    Quotes delimit string values only: a quote inside a field key is an ordinary character."""
    index, quoted, in_value = start, False, False
    while True:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"' and (quoted or in_value):
            quoted = not quoted
        elif not quoted:
            if char == " ":
                return index
            if char == "=":
                in_value = True
            elif char == ",":
                in_value = False
        index += 1


def _split_unescaped(text: str, separator: str, quotes: bool = False) -> list[str]:
    """Split on unescaped `separator`; with `quotes`, not inside quoted string values."""
    pieces, begin, index, quoted, in_value = [], 0, 0, False, False
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if quotes and char == '"' and (quoted or in_value):
            quoted = not quoted
        elif not quoted:
            if char == separator:
                pieces.append(text[begin:index])
                begin = index + 1
                in_value = False
            elif char == "=":
                in_value = True
        index += 1
    pieces.append(text[begin:])
    return pieces


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, index = [], 0
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text) and text[index + 1] in ", =\\":
            out.append(text[index + 1])
            index += 2
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


def _parse_value(raw: str) -> FieldValue:
    if raw.startswith('"'):
        body, out, index = raw[1:-1], [], 0
        while index < len(body):
            if body[index] == "\\" and index + 1 < len(body) and body[index + 1] in '"\\':
                out.append(body[index + 1])
                index += 2
            else:
                out.append(body[index])
                index += 1
        return "".join(out)
    if raw.endswith("i"):
        return int(raw[:-1])
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False
    return float(raw)


def _parse_at(text: str, start: int) -> tuple[Point, int]:
    series_end = _scan_series(text, start)
    fields_end = _scan_fields(text, series_end + 1)
    line_end = text.find("\n", fields_end)
    if line_end < 0:
        line_end = len(text)
    measurement, *tag_pairs = _split_unescaped(text[start:series_end], ",")
    tags = {}
    for pair in tag_pairs:
        key, value = _split_unescaped(pair, "=")
        tags[_unescape(key)] = _unescape(value)
    fields = {}
    for pair in _split_unescaped(text[series_end + 1 : fields_end], ",", quotes=True):
        key, value = pair.split("=", 1) if "\\" not in pair else _split_key(pair)
        fields[_unescape(key)] = _parse_value(value)
    time_ns = int(text[fields_end + 1 : line_end])
    return Point(_unescape(measurement), tags, fields, time_ns), line_end + 1


def _split_key(pair: str) -> tuple[str, str]:
    index = 0
    while pair[index] != "=":
        index += 2 if pair[index] == "\\" else 1
    return pair[:index], pair[index + 1 :]


def parse(line: str) -> Point:
    """Parse one line of line protocol written by `encode` back into a `Point`."""
    try:
        point, _ = _parse_at(line, 0)
    except (IndexError, ValueError) as exc:
        raise PointError(f"cannot parse line protocol {line[:200]!r}: {exc}") from exc
    return point


def split_lines(blob: str) -> list[str]:
    """Split newline-joined line protocol into lines (newlines inside string fields kept)."""
    lines, start = [], 0
    while start < len(blob):
        series_end = _scan_series(blob, start)
        fields_end = _scan_fields(blob, series_end + 1)
        end = blob.find("\n", fields_end)
        end = len(blob) if end < 0 else end
        lines.append(blob[start:end])
        start = end + 1
    return lines
