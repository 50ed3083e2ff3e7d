"""The hot-path line-protocol encoder: `encode()`'s lines and errors, at a fraction of the cost.

Sources repeat themselves: the same measurement and tags (a series) and the same field keys
with the same value types, point after point. `Encoder` caches, per series, the escaped
series key, and per field-key set a small formatter compiled for those keys and types (the
way `dataclasses` builds its methods), so a point costs two dict lookups, a type check per
field and one f-string instead of escaping and dispatching every key and value again.

Anything the fast path does not vouch for — a new series or field-key set, a value of another
type than the formatter was built for, a NaN or infinity, an integer or timestamp out of
InfluxDB's range, non-ASCII text that is not valid UTF-8 — goes through
`daemon.points.encode`, so the lines and the errors are exactly its own (a property test
holds the two side by side on arbitrary, also invalid, points).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from daemon.points import (
    _INT64_MAX,
    _INT64_MIN,
    _TIME_MAX,
    _TIME_MIN,
    FieldValue,
    Point,
    PointError,
    _escape_key,
    _scan_series,
    encode,
)

__all__ = ["Encoder", "FieldFormatter", "compile_formatter"]

FieldFormatter = Callable[[Mapping[str, FieldValue]], "str | None"]


def _escape_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# per value type: the checks that keep a value on the fast path, and how it is written
_CHECKS = {
    float: ["if type({v}) is not float or {v} - {v} != 0.0: return None"],  # NaN, ±inf
    int: [f"if type({{v}}) is not int or not {_INT64_MIN} <= {{v}} <= {_INT64_MAX}: return None"],
    str: [
        "if type({v}) is not str: return None",
        "if '\"' in {v} or '\\\\' in {v}: {v} = _escape_string({v})",
    ],
    bool: ["if type({v}) is not bool: return None", "{v} = 'true' if {v} else 'false'"],
}
_PLACEHOLDERS = {float: "{{{v}!r}}", int: "{{{v}}}i", str: '"{{{v}}}"', bool: "{{{v}}}"}


def compile_formatter(keys: tuple[str, ...], kinds: tuple[type, ...]) -> FieldFormatter:
    """A function writing the field set of a point with exactly these keys, in this order,
    whose values have these types: ``k=1.5,n=2i,s="x"``, or None when a value does not fit
    (another type, NaN or infinity, an integer out of range). Keys must be valid field keys
    (ones `encode` accepted) of the four field types."""
    source = ["def format_fields(fields):"]
    template = []
    for index, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
        name = f"v{index}"
        source.append(f"    {name} = fields[{key!r}]")
        source += [f"    {check.format(v=name)}" for check in _CHECKS[kind]]
        prefix = _escape_key(key, "field key").replace("{", "{{").replace("}", "}}")
        template.append(f"{prefix}={_PLACEHOLDERS[kind].format(v=name)}")
    source.append(f"    return f{','.join(template)!r}")
    namespace: dict[str, object] = {"_escape_string": _escape_string}
    exec("\n".join(source), namespace)  # keys enter the source only as repr() literals
    formatter: FieldFormatter = namespace["format_fields"]  # type: ignore[assignment]
    return formatter


class Encoder:
    """`encode` for a stream of points, with series keys and field formatters cached.

    One encoder per producer: the caches are bounded (cleared when full) and not shared
    between threads."""

    def __init__(self, max_series: int = 100_000, max_formatters: int = 1_000) -> None:
        self._series: dict[tuple[object, ...], str] = {}
        self._formatters: dict[tuple[str, ...], FieldFormatter] = {}
        self._max_series = max_series
        self._max_formatters = max_formatters

    def __call__(self, point: Point) -> str:
        """The line of `point` (no trailing newline); `PointError` as `encode` raises it."""
        fields = point.fields
        try:
            tags = point.tags
            head = self._series[(point.measurement, *tags, *tags.values())]
            format_fields = self._formatters[tuple(fields)]
        except (KeyError, TypeError):
            return self._learn(point)
        body = format_fields(fields)
        time_ns = point.time_ns
        if body is None or not _TIME_MIN <= time_ns <= _TIME_MAX:
            return encode(point)
        line = f"{head} {body} {time_ns}"
        if not line.isascii():
            try:
                line.encode()
            except UnicodeEncodeError:  # lone surrogates: let `encode` refuse it
                return encode(point)
        return line

    def encode_all(self, points: Iterable[Point]) -> tuple[list[str], list[tuple[Point, str]]]:
        """The lines of the points `encode` accepts, in order, and the refused points with
        the reason. The fast path of `__call__`, inlined for batches."""
        lines: list[str] = []
        refused: list[tuple[Point, str]] = []
        append = lines.append
        series, formatters = self._series, self._formatters
        for point in points:
            fields = point.fields
            try:
                tags = point.tags
                head = series[(point.measurement, *tags, *tags.values())]
                body = formatters[tuple(fields)](fields)
            except (KeyError, TypeError):
                body = None
            time_ns = point.time_ns
            if body is not None and _TIME_MIN <= time_ns <= _TIME_MAX:
                line = f"{head} {body} {time_ns}"
                if line.isascii():
                    append(line)
                    continue
            try:
                append(self(point))
            except PointError as exc:
                refused.append((point, str(exc)))
        return lines, refused

    def _learn(self, point: Point) -> str:
        """Encode `point` the reference way, then remember its series and field keys."""
        line = encode(point)
        try:
            series = (point.measurement, *point.tags, *point.tags.values())
            keys = tuple(point.fields)
            hash(series)
        except TypeError:  # unhashable tag values: never cached
            return line
        if len(self._series) >= self._max_series:
            self._series.clear()
        self._series[series] = line[: _scan_series(line, 0)]
        # a key starting with a tab or NUL is refused only when it comes first: never cached
        if keys not in self._formatters and all(key[0] not in "\t\x00" for key in keys):
            if len(self._formatters) >= self._max_formatters:
                self._formatters.clear()
            kinds = tuple(type(value) for value in point.fields.values())
            self._formatters[keys] = compile_formatter(keys, kinds)
        return line
