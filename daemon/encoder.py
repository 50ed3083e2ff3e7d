"""The hot-path line-protocol encoder: `encode()`'s lines and errors, at a fraction of the cost.

Sources repeat themselves: one measurement comes with the same tag keys and the same field
keys, with the same value types, point after point. `Encoder` compiles, per such shape, a
small function writing the lines of a run of points of that shape (the way `dataclasses`
builds its methods). A first pass over the run checks each point's keys in place, takes the
escaped series key from a dict by the tag values, checks each value's type and gathers the
float values; one `orjson.dumps` per run then formats all of them (the shortest round-trip
form, as `encode` writes each float, at a third of `repr`'s cost), and one f-string per point
writes the line. A batch costs one call per run of same-shaped points instead of escaping and
dispatching every key and value of every point again.

Anything the fast path does not vouch for — a new shape or series, a value of another type
than the writer was built for, a NaN or infinity, an integer or timestamp out of InfluxDB's
range, non-ASCII text (which may not be valid UTF-8) — goes through `daemon.points.encode`,
so the lines and the errors are exactly its own (a property test holds the two side by side
on arbitrary, also invalid, points).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

import orjson

from daemon.points import (
    _INT64_MAX,
    _INT64_MIN,
    _TIME_MAX,
    _TIME_MIN,
    Point,
    PointError,
    _escape_key,
    _scan_series,
    encode,
)

__all__ = ["Encoder", "RunWriter", "compile_run_writer"]

_END = object()  # what a run writer returns when it wrote every point it was given

# Writes the lines of points (extending a list with them) until one does not fit: returns
# that point (taken from the iterator, not written), or `_END`.
RunWriter = Callable[[Iterator[Point], Callable[[list[str]], None]], object]


def _escape_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# per value type: the checks that keep a value on the fast path (`break` ends the run there)
_CHECKS = {
    float: ["if type({v}) is not float or {v} - {v} != 0.0: break"],  # NaN, ±inf: `encode`
    int: [f"if type({{v}}) is not int or not {_INT64_MIN} <= {{v}} <= {_INT64_MAX}: break"],
    str: [
        "if type({v}) is not str or not {v}.isascii(): break",
        "if '\"' in {v} or '\\\\' in {v}: {v} = _escape_string({v})",
    ],
    bool: ["if type({v}) is not bool: break", "{v} = 'true' if {v} else 'false'"],
}
_PLACEHOLDERS = {float: "{{{v}}}", int: "{{{v}}}i", str: '"{{{v}}}"', bool: "{{{v}}}"}


def compile_run_writer(
    measurement: str,
    tag_keys: tuple[str, ...],
    field_keys: tuple[str, ...],
    kinds: tuple[type, ...],
    heads: dict[tuple[str, ...], str],
) -> RunWriter:
    """A run writer for points of `measurement` with exactly these tag keys (in any order)
    and these field keys (in this order), whose field values have these types. The escaped
    series key comes from `heads` by the tag values in `tag_keys` order; a point whose series
    is not there, or that does not fit (other keys or types, NaN or infinity, an integer or
    timestamp out of range, non-ASCII text), ends the run. Keys must be ones `encode`
    accepted (so valid UTF-8), of the four field types."""
    tag_values = "".join(f"tags[{key!r}], " for key in tag_keys)
    body = [
        f"if point.measurement != {measurement!r}: break",
        "tags = point.tags",
        f"if len(tags) != {len(tag_keys)}: break",
        f"head = heads_get(({tag_values}))",
        "if head is None: break",
        "fields = point.fields",
    ]
    if len(field_keys) == 1:  # the subscript below checks the key
        body.append("if len(fields) != 1: break")
    else:  # the order matters: `encode` writes fields in dict order
        body.append(f"if tuple(fields) != {field_keys!r}: break")
    template = []
    for index, (key, kind) in enumerate(zip(field_keys, kinds, strict=True)):
        value = f"v{index}"
        body.append(f"{value} = fields[{key!r}]")
        body += [check.format(v=value) for check in _CHECKS[kind]]
        prefix = _escape_key(key, "field key").replace("{", "{{").replace("}", "}}")
        template.append(f"{prefix}={_PLACEHOLDERS[kind].format(v=value)}")
    body += [
        "time_ns = point.time_ns",
        f"if not {_TIME_MIN} <= time_ns <= {_TIME_MAX}: break",
    ]
    floats = [f"v{i}" for i, kind in enumerate(kinds) if kind is float]
    others = [f"v{i}" for i, kind in enumerate(kinds) if kind is not float]
    row = ", ".join(["head", *others, "time_ns"])
    body.append(f"add_row(({row}))")
    line = f"f{'{head} ' + ','.join(template) + ' {time_ns}'!r}"
    if not floats:
        assemble = [f"extend([{line} for {row} in rows])"]
    else:
        body.append(
            f"add_floats(({', '.join(floats)},))" if len(floats) > 1 else f"add_float({floats[0]})"
        )
        texts = "dumps(values)[1:-1].decode().split(',')"
        if len(floats) == 1:
            group, source_texts = floats[0], texts
        else:
            group, source_texts = f"({', '.join(floats)})", f"zip(*[iter({texts})] * {len(floats)})"
        assemble = [
            "if rows:",
            f"    extend([{line} for ({row}), {group} in zip(rows, {source_texts})])",
        ]
    source = [
        "def make(heads_get, _escape_string, _END, dumps):",
        "    def write_run(points, extend):",
        "        rows = []",
        "        add_row = rows.append",
        "        values = []",
        "        add_float, add_floats = values.append, values.extend",
        "        for point in points:",
        "            try:",
        *(f"                {line}" for line in body),
        "            except Exception:  # whatever it is, `encode` decides",
        "                break",
        "        else:",
        "            point = _END",
        *(f"        {line}" for line in assemble),
        "        return point",
        "    return write_run",
    ]
    namespace: dict[str, Callable[..., RunWriter]] = {}
    exec("\n".join(source), namespace)  # names enter the source only as repr() literals
    return namespace["make"](heads.get, _escape_string, _END, orjson.dumps)


@dataclass(frozen=True)
class _Shape:
    """One compiled run writer and the series keys it knows, by tag values."""

    write: RunWriter
    heads: dict[tuple[str, ...], str]


class Encoder:
    """`encode` for a stream of points, with run writers and series keys cached.

    One encoder per producer: the caches are bounded (cleared when full) and not shared
    between threads."""

    def __init__(self, max_series: int = 100_000, max_shapes: int = 1_000) -> None:
        self._shapes: dict[tuple[object, ...], _Shape] = {}
        self._latest: dict[str, RunWriter] = {}  # per measurement, the writer last used
        self._series = 0
        self._max_series = max_series
        self._max_shapes = max_shapes

    def __call__(self, point: Point) -> str:
        """The line of `point` (no trailing newline); `PointError` as `encode` raises it."""
        lines, refused = self.encode_all((point,))
        if refused:
            raise PointError(refused[0][1])
        return lines[0]

    def encode_all(self, points: Iterable[Point]) -> tuple[list[str], list[tuple[Point, str]]]:
        """The lines of the points `encode` accepts, in order, and the refused points with
        the reason."""
        lines: list[str] = []
        refused: list[tuple[Point, str]] = []
        append, extend = lines.append, lines.extend
        rest = iter(points)
        point = next(rest, _END)
        while point is not _END:
            write = self._writer_for(point)
            if write is not None:
                point = write(chain((point,), rest), extend)
                if point is _END:
                    break
            try:
                append(self._learn(point))  # type: ignore[arg-type]
            except PointError as exc:
                refused.append((point, str(exc)))  # type: ignore[arg-type]
            point = next(rest, _END)
        return lines, refused

    def _writer_for(self, point: object) -> RunWriter | None:
        try:
            return self._latest.get(point.measurement)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # not a point: `encode` says what is wrong
            return None

    def _learn(self, point: Point) -> str:
        """The line of a point the latest writer of its measurement did not take: through
        the writer of its own shape when it has one for its series, else encoded the
        reference way (then its shape and series are remembered)."""
        try:
            tags, fields = point.tags, point.fields
            tag_keys = tuple(sorted(tags))
            values = tuple([tags[key] for key in tag_keys])
            kinds = tuple(map(type, fields.values()))
            key = (point.measurement, tag_keys, tuple(fields), kinds)
            shape = self._shapes.get(key)
            hash(values)
        except (AttributeError, TypeError):  # not cacheable: unhashable or unsortable
            return encode(point)
        if shape is not None and values in shape.heads:
            written: list[str] = []
            if shape.write(iter((point,)), written.extend) is _END:
                self._latest[point.measurement] = shape.write
                return written[0]
        line = encode(point)
        # a field key starting with a tab or NUL is refused only when it comes first
        if any(name[0] in "\t\x00" for name in key[2]):  # type: ignore[attr-defined]
            return line
        if shape is None or values not in shape.heads:
            if len(self._shapes) >= self._max_shapes or self._series >= self._max_series:
                self._shapes.clear()
                self._latest.clear()
                self._series = 0
                shape = None
            if shape is None:
                heads: dict[tuple[str, ...], str] = {}
                write = compile_run_writer(point.measurement, tag_keys, key[2], kinds, heads)  # type: ignore[arg-type]
                shape = self._shapes[key] = _Shape(write, heads)
            shape.heads[values] = line[: _scan_series(line, 0)]
            self._series += 1
        self._latest[point.measurement] = shape.write
        return line
