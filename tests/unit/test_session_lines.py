"""`SessionLines` writes exactly what `encode(session_point_of(...))` writes, or defers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.points import PointError, encode
from daemon.sessions import SessionLines, session_point_of

text = st.text(min_size=1, max_size=12)
values = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**6), 10**6).map(float)
    | st.sampled_from([-0.0, 1e-05, 2.5e-07, 1e16])
)


@given(
    tags=st.tuples(text, text, text, text, text),
    session_id=st.text(max_size=40),
    start_ns=st.integers(-(2**63), 2**63 - 1),
    duration=values,
    energy=values,
    power=values,
    accepted=st.booleans(),
)
def test_lines_equal_the_encoder_or_defer(
    tags: tuple[str, str, str, str, str],
    session_id: str,
    start_ns: int,
    duration: float,
    energy: float,
    power: float,
    accepted: bool,
) -> None:
    source, unit, station, pdc, siren = tags
    point = session_point_of(
        source=source,
        operational_unit=unit,
        station=station,
        pdc=pdc,
        siren=siren,
        session_id=session_id,
        start_ns=start_ns,
        duration_s=duration,
        energy_kwh=energy,
        max_power_kw=power,
        accepted=accepted,
    )
    try:
        expected = encode(point)
    except PointError:
        expected = None
    lines = SessionLines()
    try:
        head = lines.head(tags)
    except PointError:
        assert expected is None  # a tag the encoder refuses: the Point path reports it
        return
    made, deferred = lines.accepted_lines(
        [head], [session_id], [start_ns], [duration], [energy], [power], accepted
    )
    if deferred:
        assert made == [] and deferred == [0]
    else:
        assert made == [expected]
    # None: the Point path writes it (or refuses it with the encoder's own error)


def test_an_ordinary_session_takes_the_fast_path() -> None:
    lines = SessionLines()
    head = lines.head(("qualicharge", "FRABC", "FRABCP01", "FRABCE01", "123456782"))
    made, deferred = lines.accepted_lines(
        [head], ["9f1c-id"], [1_700_000_000_000_000_000], [3600.0], [12.5], [22.0]
    )
    assert deferred == [] and len(made) == 1
    line = made[0]
    assert line.startswith("charging_session,")
    assert 'session_id="9f1c-id",accepted=true ' in line
