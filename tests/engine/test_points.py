"""Points and line protocol: escaping, refusals, and round trips through parse and InfluxDB.

The InfluxDB round trip reads points back with InfluxQL (`epoch=ns`) and compares them with
type-aware rules, because InfluxDB's JSON does not keep every Python type distinction:

- the stored type of each field is read with `SHOW FIELD KEYS` (float/integer/boolean/string)
  and must match the Python type written (bool → boolean, int → integer, float → float);
- float values come back as JSON numbers and a float with an integral value (2.0, -0.0) comes
  back as a JSON integer, so floats are compared by value (`float(read) == written`);
- integers, booleans and strings must come back equal and of the same Python type.

Every point of the InfluxDB property gets its own measurement (a unique prefix, selected with
a regex because an InfluxQL quoted identifier cannot hold every character, e.g. NUL) so that
field types never conflict between examples; tag keys and field keys of one point are kept
distinct (InfluxQL's `SELECT *` cannot tell a tag from a field of the same name).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import InfluxV1SinkConfig
from daemon.metrics import Counters
from daemon.points import Point, PointError, encode, parse, split_lines, to_ns
from daemon.sinks.influxdb_v1 import InfluxV1Sink

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# InfluxDB's own limits for timestamps (models.MinNanoTime / MaxNanoTime)
TIME_MIN, TIME_MAX = -9223372036854775806, 9223372036854775806


def _line(measurement: str, tags: dict[str, str], fields: dict[str, Any], t: int = 1) -> str:
    return encode(Point(measurement, tags, fields, t))


@pytest.mark.parametrize(
    ("point", "line"),
    [
        (Point("m", {}, {"f": 1}, 5), "m f=1i 5"),
        (Point("m", {}, {"f": 1.0}, 5), "m f=1.0 5"),
        (Point("m", {}, {"f": 0.1}, 5), "m f=0.1 5"),
        (Point("m", {}, {"f": True, "g": False}, 5), "m f=true,g=false 5"),
        (Point("m", {}, {"f": "text"}, 5), 'm f="text" 5'),
        (Point("m", {}, {"f": ""}, 5), 'm f="" 5'),
        (Point("my meas,x=y", {}, {"f": 1}, 5), r"my\ meas\,x=y f=1i 5"),
        (Point("m", {"tag key": "a,b=c"}, {"f": 1}, 5), r"m,tag\ key=a\,b\=c f=1i 5"),
        (Point("m", {}, {"field, key=": 1}, 5), r"m field\,\ key\==1i 5"),
        (Point("m", {}, {"s": 'say "hi"'}, 5), r'm s="say \"hi\"" 5'),
        (Point("m", {}, {"s": "C:\\dir\\"}, 5), r'm s="C:\\dir\\" 5'),
        (Point("m", {}, {"s": "a, b = c"}, 5), 'm s="a, b = c" 5'),
        (Point("m", {}, {"s": "two\nlines"}, 5), 'm s="two\nlines" 5'),
        (
            Point("mesure", {"lieu": "Besançon"}, {"é": "⚡ 22 kW"}, 5),
            'mesure,lieu=Besançon é="⚡ 22 kW" 5',
        ),
        (Point("m", {"b": "2", "a": "1"}, {"f": 1}, 5), "m,a=1,b=2 f=1i 5"),
        (Point("m", {"a": "1", "empty": ""}, {"f": 1}, 5), "m,a=1 f=1i 5"),
        (Point("m", {}, {"f": -(2**63)}, -5), "m f=-9223372036854775808i -5"),
    ],
)
def test_encode_escapes_and_types(point: Point, line: str) -> None:
    """Each point encodes to the exact line protocol InfluxDB documents for it."""
    assert encode(point) == line


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (Point("m", {}, {"f": math.nan}, 1), "NaN"),
        (Point("m", {}, {"f": math.inf}, 1), "inf"),
        (Point("m", {}, {"f": -math.inf}, 1), "inf"),
        (Point("m", {"t": "a\nb"}, {"f": 1}, 1), "newline"),
        (Point("m", {"t": "a\rb"}, {"f": 1}, 1), "newline"),
        (Point("m", {"t": "a\\b"}, {"f": 1}, 1), "backslash"),
        (Point("m", {"t\\": "a"}, {"f": 1}, 1), "backslash"),
        (Point("m\n", {}, {"f": 1}, 1), "newline"),
        (Point("m", {}, {"f\\g": 1}, 1), "backslash"),
        (Point("m", {"time": "x"}, {"f": 1}, 1), "time"),
        (Point("m", {}, {"time": 1}, 1), "time"),
        (Point("m", {"t": "x"}, {}, 1), "no fields"),
        (Point("", {}, {"f": 1}, 1), "empty"),
        (Point("#comment", {}, {"f": 1}, 1), "#"),
        (Point("\tm", {}, {"f": 1}, 1), "tab"),
        (Point("\x00m", {}, {"f": 1}, 1), "NUL"),
        (Point("m", {}, {"\tf": 1}, 1), "tab"),
        (Point("m", {"": "x"}, {"f": 1}, 1), "empty"),
        (Point("m", {}, {"": 1}, 1), "empty"),
        (Point("m", {}, {"f": None}, 1), "type"),  # type: ignore[dict-item]
        (Point("m", {}, {"f": [1]}, 1), "type"),  # type: ignore[dict-item]
        (Point("m", {}, {"f": 2**63}, 1), "range"),
        (Point("m", {}, {"f": -(2**63) - 1}, 1), "range"),
        (Point("m", {}, {"f": 1}, TIME_MAX + 1), "range"),
        (Point("m", {}, {"f": "\udc80"}, 1), "UTF-8"),
        (Point("m", {"t": "\ud800"}, {"f": 1}, 1), "UTF-8"),
    ],
)
def test_encode_refuses_what_influxdb_cannot_store(point: Point, message: str) -> None:
    """Unrepresentable points raise PointError with a reason instead of being dropped."""
    with pytest.raises(PointError, match=message):
        encode(point)


def test_at_converts_aware_datetimes_and_refuses_naive_ones() -> None:
    """Point.at stamps in UTC nanoseconds plus the offset; a naive datetime is refused."""
    paris = timezone(timedelta(hours=2))
    point = Point.at("m", datetime(2026, 9, 29, 2, 30, tzinfo=paris), {}, {"f": 1}, offset_ns=7)
    assert point.time_ns == to_ns(datetime(2026, 9, 29, 0, 30, tzinfo=UTC)) + 7
    assert point.time_ns == 1_790_641_800_000_000_007
    with pytest.raises(PointError, match="naive"):
        Point.at("m", datetime(2026, 9, 29), {}, {"f": 1})


def test_split_lines_keeps_newlines_inside_string_fields() -> None:
    """Splitting a joined body yields the original lines, even with newlines in strings."""
    lines = [
        _line("a", {"t": "x"}, {"s": "one\ntwo", "n": 1}),
        _line("b b", {}, {"s": 'q"\n"', "k": True}),
        _line("c", {}, {"f": 1.5}),
    ]
    assert split_lines("\n".join(lines)) == lines


def test_quotes_in_keys_do_not_confuse_the_parser() -> None:
    """A double quote in a measurement, tag or field key is data, not a string delimiter."""
    point = Point('a"b', {'t"k': 'v"x'}, {'f"k': "x y", "g": 1, 'h"': 'z"'}, 1)
    line = encode(point)
    assert parse(line) == point
    assert split_lines(f"{line}\n{line}") == [line, line]


def test_parse_refuses_garbage_with_point_error() -> None:
    """A malformed line raises PointError naming the line, not an IndexError."""
    with pytest.raises(PointError, match="cannot parse"):
        parse("measurement-without-fields")


# ---- property: encode → parse is the identity -------------------------------------------

_NAME_ALPHABET = st.characters(codec="utf-8", exclude_characters="\n\r\\")
_names = st.text(_NAME_ALPHABET, min_size=1, max_size=12).filter(lambda s: s != "time")
# InfluxDB strips a leading tab or NUL from a line and from its field set, so encode refuses
# them at the start of a measurement and of the first field key
_measurements = st.text(_NAME_ALPHABET, min_size=1, max_size=12).filter(
    lambda s: not s.startswith(("#", "\t", "\x00"))
)
_field_keys = _names.filter(lambda s: not s.startswith(("\t", "\x00")))
_field_values = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(st.characters(codec="utf-8"), max_size=30),
)
_times = st.integers(TIME_MIN, TIME_MAX)


@st.composite
def points(draw: st.DrawFn, distinct_keys: bool = False) -> Point:
    tags = draw(st.dictionaries(_names, _names, max_size=4))
    field_names = _field_keys.filter(lambda k: k not in tags) if distinct_keys else _field_keys
    fields = draw(st.dictionaries(field_names, _field_values, min_size=1, max_size=5))
    return Point(draw(_measurements), tags, fields, draw(_times))


def _typed(fields: Any) -> dict[str, tuple[type, Any]]:
    """Fields with their exact type, so that True never equals 1 and 1 never equals 1.0."""
    return {key: (type(value), value) for key, value in fields.items()}


@given(points())
def test_any_valid_point_round_trips_through_line_protocol(point: Point) -> None:
    """encode then parse gives back the same measurement, tags, typed fields and time."""
    back = parse(encode(point))
    assert back.measurement == point.measurement
    assert dict(back.tags) == dict(point.tags)
    assert _typed(back.fields) == _typed(point.fields)
    assert back.time_ns == point.time_ns


@given(st.lists(points(), min_size=1, max_size=8))
def test_any_batch_splits_back_into_its_lines(batch: list[Point]) -> None:
    """split_lines on a joined body returns exactly the encoded lines, in order."""
    lines = [encode(point) for point in batch]
    assert split_lines("\n".join(lines)) == lines


# ---- property: points written to a real InfluxDB read back unchanged --------------------

_INFLUX_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string"}


def _assert_same_value(written: Any, read: Any, where: str) -> None:
    if type(written) is float:
        assert type(read) in (int, float), where
        assert float(read) == written, where
    else:
        assert type(read) is type(written), where
        assert read == written, where


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(points(distinct_keys=True), min_size=5, max_size=15))
def test_points_written_to_influxdb_read_back_unchanged(influxdb: Any, batch: list[Point]) -> None:
    """Any valid points written with the /write sink come back from InfluxDB unchanged."""
    prefix = uuid.uuid4().hex[:8]
    named = [
        Point(f"{prefix}{i}_{p.measurement}", p.tags, p.fields, p.time_ns)
        for i, p in enumerate(batch)
    ]

    async def write() -> None:
        sink = InfluxV1Sink(
            InfluxV1SinkConfig(type="influxdb", url=influxdb.url, database=influxdb.database),
            Counters("test"),
        )
        await sink.open()
        try:
            await sink.write("\n".join(encode(p) for p in named).encode(), len(named))
        finally:
            await sink.close()

    asyncio.run(write())
    for index, point in enumerate(named):
        # select by a regex on the unique prefix: InfluxQL cannot quote every name (NUL)
        name = f"/^{prefix}{index}_/"
        types = {
            row["fieldKey"]: row["fieldType"]
            for row in influxdb.query(f"SHOW FIELD KEYS FROM {name}")
        }
        assert types == {k: _INFLUX_TYPES[type(v)] for k, v in point.fields.items()}
        rows = influxdb.query(f"SELECT * FROM {name} GROUP BY *")
        assert len(rows) == 1, point
        row = rows[0]
        assert row.pop("time") == point.time_ns
        tags = {k: row.pop(k) for k in list(row) if k not in point.fields}
        assert {k: v for k, v in tags.items() if v is not None} == dict(point.tags)
        for key, value in point.fields.items():
            _assert_same_value(value, row[key], f"{point.measurement}.{key}")
