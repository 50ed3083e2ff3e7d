"""The engine's hot path: the caching `Encoder`, and the flusher's overlapped acknowledgements.

`Encoder` is what emitters use; `encode` is the reference (its escaping and refusals are
tested in tests/engine/test_points.py). For any point, valid or not, and in any order of
points sharing series and keys, the encoder must produce the same line or the same error.
The flusher acknowledges a batch while writing the next: order and completeness must hold.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from daemon.config import OutboxConfig
from daemon.encoder import Encoder
from daemon.errors import SinkAuthError
from daemon.flusher import Flusher
from daemon.metrics import Counters
from daemon.outbox import Outbox
from daemon.points import Point, PointError, encode
from daemon.state import StateDB

_ANY_TEXT = st.text(st.characters(), max_size=6)
# few distinct names, so that points share series and keys (cache hits), plus odd ones
_names = st.one_of(st.sampled_from(["a", "b c", "d,e", "f=g", "", "time", "\tk", "é"]), _ANY_TEXT)
_values = st.one_of(
    st.integers(-(2**64), 2**64),
    st.floats(),  # NaN and infinities included
    st.sampled_from([math.nan, math.inf, -0.0, 1e300]),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(['say "hi"', "C:\\dir\\", "\udc80", "⚡"]),
    st.none(),
    st.lists(st.integers(), max_size=1),
)
_times = st.one_of(st.integers(-(2**63), 2**63), st.sampled_from([0, 1_782_864_000 * 10**9]))


@st.composite
def points(draw: st.DrawFn) -> Point:
    measurement = draw(st.one_of(st.sampled_from(["m", "m m", "#x", "\x00m"]), _ANY_TEXT))
    tags = draw(st.dictionaries(_names, _names, max_size=3))
    fields = draw(st.dictionaries(_names, _values, max_size=4))
    return Point(measurement, tags, fields, draw(_times))


def _outcome(fn, point: Point) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    try:
        return ("line", fn(point))
    except PointError as exc:
        return ("refused", str(exc))
    except Exception as exc:  # whatever `encode` raises, the encoder must raise too
        return ("error", type(exc).__name__)


@given(st.lists(points(), min_size=1, max_size=12))
def test_encoder_gives_the_same_lines_and_errors_as_encode(batch: list[Point]) -> None:
    """Encoding a sequence with one Encoder matches encode() point by point, twice over."""
    encoder = Encoder()
    for point in [*batch, *batch]:
        assert _outcome(encoder, point) == _outcome(encode, point), point


def _assert_encode_all_matches_encode(batch: list[Point]) -> None:
    encoder = Encoder()
    expected = [_outcome(encode, point) for point in batch]
    if any(kind == "error" for kind, _ in expected):
        return  # not a PointError: encode_all lets it through like encode does
    for _ in range(2):
        lines, refused = encoder.encode_all(batch)
        assert lines == [text for kind, text in expected if kind == "line"]
        assert [reason for _, reason in refused] == [
            text for kind, text in expected if kind == "refused"
        ]


@given(st.lists(points(), min_size=1, max_size=12))
def test_encode_all_gives_the_lines_encode_accepts_and_its_reasons(batch: list[Point]) -> None:
    """A batch through encode_all (twice, so the second pass hits the caches) yields the
    accepted points' lines in order and encode's reason for every refused point."""
    _assert_encode_all_matches_encode(batch)


@st.composite
def runs(draw: st.DrawFn) -> list[Point]:
    """Points sharing one shape (measurement, tag keys, field keys), as sources send them,
    with now and then another key order, value type or an odd value."""
    measurement = draw(st.sampled_from(["m", "m m", "é"]))
    tag_keys = draw(st.lists(_names, max_size=3, unique=True))
    field_keys = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    kinds = [draw(st.sampled_from([1.5, 2, "s", True])) for _ in field_keys]
    # floats also from a few repeated values, signed zeros and exponent forms
    repeated = st.sampled_from([0.0, -0.0, 230.1, 22.0, 1e-05, 2.5e-07, 1e16, 5e-324])
    typical = {
        float: st.one_of(st.floats(-1e6, 1e6), repeated),
        int: st.integers(-1000, 1000),
        str: _names,
    }
    batch = []
    for _ in range(draw(st.integers(1, 12))):
        tags = {key: draw(st.sampled_from(["a", "b c", ""])) for key in tag_keys}
        fields = {}
        for key, kind in zip(field_keys, kinds, strict=True):
            odd = draw(st.integers(0, 9)) == 0
            strategy = typical.get(type(kind), st.booleans())
            fields[key] = draw(_values if odd else strategy)
        if draw(st.integers(0, 9)) == 0:
            tags = dict(reversed(tags.items()))
        if draw(st.integers(0, 9)) == 0:
            fields = dict(reversed(fields.items()))
        time_ns = draw(_times) if draw(st.integers(0, 9)) == 0 else 1_782_864_000 * 10**9
        batch.append(Point(measurement, tags, fields, time_ns))
    return batch


@given(st.lists(runs(), min_size=1, max_size=3))
def test_encode_all_on_runs_of_one_shape_matches_encode(parts: list[list[Point]]) -> None:
    """Runs of same-shaped points (the fast path), one after the other and the first one
    again under another measurement, give encode's lines and reasons, also when a point in
    a run does not fit its writer."""
    twin = [replace(point, measurement=f"{point.measurement}2") for point in parts[0]]
    _assert_encode_all_matches_encode([point for part in [*parts, twin] for point in part])


def test_float_fields_are_written_in_their_shortest_round_trip_form() -> None:
    """A run's float fields are formatted together: each text parses back to its own value
    (0.0 and -0.0 apart), exponents in orjson's form; NaN or infinity leave the run to
    `encode`, which refuses them."""
    encoder = Encoder()
    values = [230.1, 230.1, 0.0, -0.0, -0.0, 0.0, 1e16, 1e-05, 2.5e-07, 5e-324, math.nan]
    values += [math.inf, 230.1]
    batch = [Point("m", {"t": "a"}, {"f": value, "g": 1.5}, 1) for value in values]
    _assert_encode_all_matches_encode(batch)
    lines, refused = encoder.encode_all(batch)
    assert [line.split(" ")[1] for line in lines[:6]] == [
        "f=230.1,g=1.5",
        "f=230.1,g=1.5",
        "f=0.0,g=1.5",
        "f=-0.0,g=1.5",
        "f=-0.0,g=1.5",
        "f=0.0,g=1.5",
    ]
    for line, value in zip(lines, [*values[:10], values[12]], strict=True):
        text = line.split(" ")[1].split(",")[0].removeprefix("f=")
        assert float(text) == value and math.copysign(1, float(text)) == math.copysign(1, value)
    assert len(refused) == 2


def test_encoder_handles_values_that_do_not_fit_the_cached_formatter() -> None:
    """After a series and key set are cached, other types, NaN, escapes and odd keys still
    encode (or fail) exactly as encode() does."""
    encoder = Encoder()
    tags = {"pdc": "FR ABC,P1=2"}
    first = Point("m", tags, {"f": 1.5, "n": 2, "s": "x", "b": True, "{k}": 0.0}, 1)
    assert encoder(first) == encode(first)
    for fields in (
        {"f": 2, "n": 2, "s": "x", "b": True, "{k}": 0.0},
        {"f": 1.5, "n": 2.0, "s": "x", "b": False, "{k}": 0.0},
        {"f": 1.5, "n": 2, "s": 'a "quoted" C:\\path', "b": True, "{k}": -0.0},
        {"f": 1.5, "n": 2, "s": "Besançon ⚡", "b": True, "{k}": 1e300},
        {"f": 1.5, "n": True, "s": "x", "b": 1, "{k}": 0.0},
        {"f": math.nan, "n": 2, "s": "x", "b": True, "{k}": 0.0},
        {"f": 1.5, "n": 2**63, "s": "x", "b": True, "{k}": 0.0},
        {"f": 1.5, "n": 2, "s": "\udc80", "b": True, "{k}": 0.0},
        {"f": 1.5, "n": 2, "s": None, "b": True, "{k}": 0.0},
    ):
        point = Point("m", tags, fields, 2)
        assert _outcome(encoder, point) == _outcome(encode, point), fields
    late = Point("m", tags, dict(first.fields), 2**63)
    assert _outcome(encoder, late) == _outcome(encode, late)


def test_encoder_caches_stay_bounded() -> None:
    """Endless new series and keys never grow the caches past their bounds."""
    encoder = Encoder(max_series=10, max_shapes=5)
    for n in range(100):
        point = Point("m", {"id": str(n)}, {f"k{n}": 1.5}, n)
        assert encoder(point) == encode(point)
    assert encoder._series <= 10
    assert len(encoder._shapes) <= 5


class _RecordingSink:
    """A sink that keeps what it is given and refuses credentials from the n-th write on."""

    name = "recording"

    def __init__(self, refuse_from: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self._refuse_from = refuse_from

    async def write(self, body: bytes, lines: int) -> None:
        if self._refuse_from is not None and len(self.bodies) >= self._refuse_from:
            raise SinkAuthError("HTTP 401: refused")
        self.bodies.append(body)


async def _filled_outbox(tmp_path: Path, chunks: int) -> tuple[StateDB, Outbox]:
    db = StateDB(tmp_path / "state.db")
    outbox = Outbox(db, Counters("outbox"), chunk_lines=10)
    await outbox.start()
    for chunk in range(chunks):
        await outbox.put([f"m n={chunk * 10 + i}i {chunk * 10 + i}" for i in range(10)])
    return db, outbox


async def test_flush_writes_in_order_and_returns_with_every_ack_done(tmp_path: Path) -> None:
    """With acknowledgements overlapping the next write, flush still writes every batch once,
    in outbox order, and returns with the outbox empty."""
    db, outbox = await _filled_outbox(tmp_path, chunks=7)
    sink = _RecordingSink()
    flusher = Flusher(outbox, sink, OutboxConfig(batch_size=20), Counters("sink"))  # type: ignore[arg-type]
    try:
        assert await flusher.flush() is True
        assert outbox.depth == 0 and await outbox.read_batch(100) is None
        numbers = [int(line.split()[-1]) for body in sink.bodies for line in body.split(b"\n")]
        assert numbers == list(range(70))
        assert len(sink.bodies) == 4  # 20 + 20 + 20 + 10 lines
    finally:
        await outbox.close()
        db.close()


async def test_flush_blocked_midway_keeps_exactly_the_unwritten_batches(tmp_path: Path) -> None:
    """When the sink refuses the third batch, the two written ones are acknowledged before
    flush returns and the rest stays in the outbox, in order."""
    db, outbox = await _filled_outbox(tmp_path, chunks=6)
    sink = _RecordingSink(refuse_from=2)
    flusher = Flusher(outbox, sink, OutboxConfig(batch_size=20), Counters("sink"))  # type: ignore[arg-type]
    try:
        assert await flusher.flush() is False
        assert flusher.blocked_reason is not None
        assert outbox.depth == 20
        left = await outbox.read_batch(100)
        assert left is not None
        assert [int(line.split()[-1]) for line in left.body.split(b"\n")] == list(range(40, 60))
    finally:
        await outbox.close()
        db.close()


async def test_commits_of_odd_sizes_still_read_back_as_full_batches(tmp_path: Path) -> None:
    """Chunks are cut so that batches of chunk_lines come out full, whatever the commit sizes,
    also after a restart; the lines keep their order."""
    db = StateDB(tmp_path / "state.db")
    outbox = Outbox(db, Counters("outbox"), chunk_lines=10)
    await outbox.start()
    sent = [f"m n={n}i {n}" for n in range(45)]
    for start, end in ((0, 7), (7, 14), (14, 21), (21, 33)):
        await outbox.put(sent[start:end])
    await outbox.close()
    db.close()

    db = StateDB(tmp_path / "state.db")
    outbox = Outbox(db, Counters("outbox"), chunk_lines=10)
    await outbox.start()
    try:
        await outbox.put(sent[33:45])
        sizes, got, after = [], [], 0
        while (batch := await outbox.read_batch(10, after_id=after)) is not None:
            sizes.append(batch.lines)
            got += batch.body.decode().split("\n")
            after = batch.last_id
        assert sizes == [10, 10, 10, 10, 5]
        assert got == sent
    finally:
        await outbox.close()
        db.close()


async def test_chunks_beyond_the_memory_budget_are_read_from_the_database_in_order(
    tmp_path: Path,
) -> None:
    """With room in memory for only a few chunk bodies, batches still come in commit order,
    each line once, whether from memory or the database; dropped and acknowledged chunks are
    gone from both."""
    db = StateDB(tmp_path / "state.db")
    outbox = Outbox(db, Counters("outbox"), chunk_lines=10, max_points=150, recent_bytes=400)
    await outbox.start()
    sent = [f"m n={n}i {n}" for n in range(200)]
    try:
        for start in range(0, 200, 7):
            await outbox.put(sent[start : start + 7])  # the oldest 50 lines are dropped
        got, after = [], 0
        while (batch := await outbox.read_batch(20, after_id=after)) is not None:
            got += batch.body.decode().split("\n")
            after = batch.last_id
            if len(got) <= 60:  # acknowledge the first batches, keep the others
                await outbox.ack(batch.ids)
        assert got == sent[50:]
        left = await outbox.read_batch(1000)
        assert left is not None and left.body.decode().split("\n") == sent[110:]
        assert outbox.depth == 90
    finally:
        await outbox.close()
        db.close()
