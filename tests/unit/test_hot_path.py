"""The engine's hot path: the caching `Encoder` behaves exactly like `encode`.

`Encoder` is what emitters use; `encode` is the reference (its escaping and refusals are
tested in tests/engine/test_points.py). For any point, valid or not, and in any order of
points sharing series and keys, the encoder must produce the same line or the same error.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from daemon.points import Encoder, Point, PointError, encode

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


def test_encoder_caches_stay_bounded() -> None:
    """Endless new series and keys never grow the caches past their bounds."""
    encoder = Encoder(max_series=10, max_keys=5)
    for n in range(100):
        point = Point("m", {"id": str(n)}, {f"k{n}": 1.5}, n)
        assert encoder(point) == encode(point)
    assert len(encoder._series) <= 10
    assert len(encoder._keys) <= 5
