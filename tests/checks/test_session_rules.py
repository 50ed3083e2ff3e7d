"""The exclusion rules one by one, and the engine's equivalence with the seed's pipeline."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.qualicharge.fake import AnomalyMix, make_fleet, make_sessions
from daemon.checks.rules import (
    DUPS,
    ENEA,
    ENEU,
    ENEX,
    NEGS,
    ODUS,
    OVLP,
    SessionRulesConfig,
    codes,
    own_flags,
    own_flags_array,
)
from daemon.records import ChargingSession
from daemon.sessions import session_offset_ns
from daemon.state import StateDB
from tests.checks.conftest import Runner
from tests.checks.seed_reference import frame, reference_flags

T0 = datetime(2025, 4, 10, 8, 0, tzinfo=UTC)


def session(
    sid: str,
    start: datetime = T0,
    minutes: float = 60,
    energy: float = 10.0,
    power: float = 22.0,
    pdc: str = "FRABCE0000011",
) -> ChargingSession:
    return ChargingSession(
        source="qualicharge",
        session_id=sid,
        pdc=pdc,
        station="FRABCP000001",
        operational_unit="FRABC",
        siren="123456782",
        start=start,
        end=start + timedelta(minutes=minutes),
        energy_kwh=energy,
        max_power_kw=power,
    )


CONFIG = SessionRulesConfig()


@pytest.mark.parametrize(
    ("minutes", "energy", "power", "expected"),
    [
        (60, 10.0, 22.0, 0),
        (-1, 0.5, 22.0, NEGS | ENEA),  # negative duration: possible energy is negative too
        (-1, 1.5, 22.0, NEGS | ODUS | ENEA),
        (-1, 0.0, 22.0, NEGS | ENEA),  # 0 kWh is above a negative possible energy
        (60, 1000.5, 2000.0, ENEU),
        (60, 24.3, 22.0, ENEA),  # above 22 x 1.1 = 24.2
        (60, 24.2, 22.0, 0),  # exactly at the limit is fine
        (60, 51.0, 22.0, ENEA | ENEX),  # above 50 and above 2 x 22
        (60, 45.0, 22.0, ENEA),  # above 2 x 22 but not above 50 kWh
        (0, 0.0, 22.0, 0),
        (0, 0.2, 22.0, ENEA),
    ],
)
def test_own_rules(minutes: float, energy: float, power: float, expected: int) -> None:
    """Each per-session rule fires exactly as DESIGN.md defines it, at its default threshold."""
    assert own_flags(CONFIG, minutes * 60, energy, power) == expected


def test_negs_uses_total_seconds_unlike_the_seed() -> None:
    """A session ending a second before it starts is NEGS (`.seconds` would say 86399)."""
    delta = timedelta(seconds=-1)
    assert delta.seconds == 86399
    assert own_flags(CONFIG, delta.total_seconds(), 0.0, 22.0) & NEGS


def test_thresholds_and_disabled_rules_are_configurable() -> None:
    """Thresholds come from the config; disabled rules vanish from the mask."""
    config = SessionRulesConfig(eneu_max_kwh=100, enex_min_kwh=1000, disabled_rules=["OVLP"])
    assert own_flags(config, 3600 * 10, 150.0, 22.0) == ENEU
    assert config.mask & OVLP == 0 and config.mask & DUPS
    assert SessionRulesConfig(enabled=False).mask == 0
    assert codes(NEGS | OVLP) == ["NEGS", "OVLP"]


def test_config_rejects_unknown_keys_and_rules() -> None:
    """A typo in `checks.sessions` is an error, not a silently ignored option."""
    with pytest.raises(ValueError):
        SessionRulesConfig.model_validate({"eneu_max": 5})
    with pytest.raises(ValueError):
        SessionRulesConfig.model_validate({"disabled_rules": ["OVRS"]})


async def test_duplicate_and_overlap_against_the_previous_session(runner: Runner) -> None:
    """A duplicate carries DUPS and OVLP, its original stays accepted; an overlap is OVLP."""
    first = session("a")
    twin = session("b")  # same start and end, larger id: comes second
    later = session("c", start=T0 + timedelta(minutes=30))  # starts before "b" ends
    await runner.feed([first, twin, later])
    assert runner.final_flags() == {"a": 0, "b": DUPS | OVLP, "c": OVLP}


async def test_zero_duration_duplicates_are_dups_without_overlap(runner: Runner) -> None:
    """Two zero-length sessions at the same instant: the second is DUPS but not OVLP."""
    await runner.feed([session("a", minutes=0, energy=0.0), session("b", minutes=0, energy=0.0)])
    assert runner.final_flags() == {"a": 0, "b": DUPS}


def _equivalent(runner: Runner, sessions: list[ChargingSession]) -> None:
    expected = reference_flags(frame(sessions))
    got = runner.final_flags()
    wrong = {sid: (codes(expected[sid]), codes(got.get(sid, -1))) for sid in expected}
    wrong = {sid: pair for sid, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, f"{len(wrong)} sessions differ, e.g. {list(wrong.items())[:3]}"
    assert len(got) == len(expected)


@pytest.mark.parametrize("order", ["sorted", "shuffled", "reversed"])
async def test_engine_equals_the_seed_pipeline(db: StateDB, order: str) -> None:
    """On generated sessions in any arrival order, every flag equals the seed pipeline's."""
    fleet = make_fleet(40, seed=5)
    sessions = make_sessions(fleet, 3000, seed=6, mix=AnomalyMix(dups=0.03, ovlp=0.03))
    fed = list(sessions)
    if order == "shuffled":
        random.Random(8).shuffle(fed)
    elif order == "reversed":
        fed.reverse()
    runner = Runner(db, CONFIG)
    await runner.start()
    await runner.feed(fed, batch=257)
    _equivalent(runner, sessions)
    flagged = {code for bits in runner.final_flags().values() for code in codes(bits)}
    assert flagged == {"NEGS", "ENEU", "ENEA", "ODUS", "ENEX", "DUPS", "OVLP"}


async def test_corrections_leave_the_flags_of_the_latest_versions(db: StateDB) -> None:
    """Sessions corrected (energy, start, end, even charge point), some arriving before their
    first version, end up flagged as the seed pipeline flags the latest version of each."""
    fleet = make_fleet(20, seed=9)
    sessions = make_sessions(fleet, 1500, seed=10, mix=AnomalyMix(dups=0.05, ovlp=0.05))
    rng = random.Random(11)
    final = list(sessions)
    corrections = []
    for index in rng.sample(range(len(final)), 200):
        old = final[index]
        shift = timedelta(minutes=rng.choice([-90, -5, 0, 5, 90]))
        other = rng.choice(fleet.pdcs) if rng.random() < 0.2 else None
        new = replace(
            old,
            start=old.start + shift,
            end=old.end + shift * rng.choice([0, 1, 2]),
            energy_kwh=round(old.energy_kwh * rng.uniform(0.5, 3), 3),
            pdc=other.id_pdc_itinerance if other else old.pdc,
            updated_at=old.updated_at + timedelta(days=2),
        )
        final[index] = new
        corrections.append(new)
    fed = list(sessions)
    random.Random(12).shuffle(fed)
    runner = Runner(db, CONFIG)
    await runner.start()
    await runner.feed(fed[:900], batch=100)
    await runner.feed(corrections[:100] + fed[900:], batch=111)
    await runner.feed(corrections[100:], batch=37)
    _equivalent(runner, final)


def _sessions_strategy() -> st.SearchStrategy[list[ChargingSession]]:
    one = st.tuples(
        st.integers(0, 2),  # charge point
        st.integers(0, 12),  # start, in 10-minute steps (many ties)
        st.sampled_from([-10, 0, 0, 10, 30, 60, 600]),  # duration in minutes
        st.sampled_from([0.0, 0.5, 3.0, 20.0, 60.0, 1200.0]),
    )

    def build(raw: list[tuple[int, int, int, float]]) -> list[ChargingSession]:
        return [
            session(
                f"s{index:03d}",
                start=T0 + timedelta(minutes=10 * slot),
                minutes=minutes,
                energy=energy,
                power=7.4,
                pdc=f"FRABCE00000{pdc}",
            )
            for index, (pdc, slot, minutes, energy) in enumerate(raw)
        ]

    return st.lists(one, min_size=1, max_size=40).map(build)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sessions=_sessions_strategy(), seed=st.integers(0, 1000), batch=st.integers(1, 9))
async def test_any_order_any_batching_matches_the_seed(
    tmp_path_factory: pytest.TempPathFactory,
    sessions: list[ChargingSession],
    seed: int,
    batch: int,
) -> None:
    """Whatever the arrival order and batch size, ties included, flags equal the seed's."""
    fed = list(sessions)
    random.Random(seed).shuffle(fed)
    db = StateDB(tmp_path_factory.mktemp("prop") / "state.db")
    try:
        runner = Runner(db, CONFIG)
        await runner.start()
        await runner.feed(fed, batch=batch)
        _equivalent(runner, sessions)
    finally:
        db.close()


def test_session_offset_is_stable_and_sub_second() -> None:
    """A session's point offset is the same on every run (CRC-32 of its id) and below 1 s."""
    assert session_offset_ns("3f0c2b9e-1111-4a2b-9c3d-aabbccddeeff") == 742_285_868
    offsets = [session_offset_ns(f"session-{index}") for index in range(2000)]
    assert all(0 <= offset < 1_000_000_000 for offset in offsets)
    assert len(set(offsets)) == len(offsets)


@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(10**7), 10**7),  # duration (ms)
            st.floats(-5, 2000, allow_nan=False),
            st.sampled_from([0.0, 3.7, 7.4, 22.0, 150.0]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_column_rules_equal_the_row_rules(rows: list[tuple[int, float, float]]) -> None:
    """The engine's column-wise rules give, element by element, the readable definition."""
    durations = np.asarray([ms / 1000 for ms, _, _ in rows])
    energies = np.asarray([energy for _, energy, _ in rows])
    powers = np.asarray([power for _, _, power in rows])
    got = own_flags_array(CONFIG, durations, energies, powers).tolist()
    assert got == [own_flags(CONFIG, ms / 1000, e, p) for ms, e, p in rows]
