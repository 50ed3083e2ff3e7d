"""Points for verdicts: `charging_session`, one `anomaly` per rule hit, and corrections.

Every point of a session is stamped at its start plus the session's deterministic offset, so
a re-judged session overwrites its own points. What InfluxDB cannot do — delete — is handled
by overwriting:

- a rule that no longer applies (a neighbour arrived late, a correction) gets its anomaly
  point rewritten with `detail` starting with "cleared:" (InfluxDB merges fields, so the old
  `value` and `threshold` stay readable);
- a corrected session whose start or tags changed leaves its old point at the old series and
  time: it is rewritten with `energy_kwh` 0 and `accepted` false (a tombstone, same
  `session_id`), and its old anomalies are cleared.

Anomaly values: NEGS the duration (s); ENEU, ENEA, ODUS, ENEX, DUPS the energy (kWh) with the
threshold it crossed; OVLP the overlap (s) with the previous session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from daemon.anomaly import anomaly_point
from daemon.checks.memory import Memory
from daemon.checks.rules import (
    DUPS,
    ENEA,
    ENEU,
    ENEX,
    NEGS,
    ODUS,
    OVLP,
    RULES,
    SessionRulesConfig,
)
from daemon.points import Point
from daemon.records import ChargingSession
from daemon.sessions import SessionLines, session_offset_ns, session_point

__all__ = [
    "anomaly_points",
    "new_session_points",
    "rejudged_points",
    "retraction_points",
    "session_points",
]


def _measure(
    rule: int,
    session: ChargingSession,
    previous: ChargingSession | None,
    config: SessionRulesConfig,
) -> tuple[float, float | None, str]:
    """(value, threshold, detail) of `rule` on `session`."""
    duration = (session.end - session.start).total_seconds()
    energy = float(session.energy_kwh)
    power = float(session.max_power_kw)
    enea_max = duration / 3600 * power
    if rule == NEGS:
        return duration, config.negs_below_s, f"duration {duration:g} s"
    if rule == ODUS:
        return energy, config.odus_min_kwh, f"{energy:g} kWh in a duration of {duration:g} s"
    if rule == ENEU:
        return energy, config.eneu_max_kwh, f"{energy:g} kWh in one session"
    if rule == ENEA:
        return (
            energy,
            enea_max * config.enea_factor,
            f"{energy:g} kWh in {duration:g} s at {power:g} kW nominal",
        )
    if rule == ENEX:
        return (
            energy,
            max(config.enex_min_kwh, enea_max * config.enex_factor),
            f"{energy:g} kWh in {duration:g} s at {power:g} kW nominal",
        )
    other = previous.session_id if previous is not None else "?"
    if rule == DUPS:
        return energy, None, f"same start and end as session {other}"
    overlap = (previous.end - session.start).total_seconds() if previous is not None else 0.0
    return overlap, 0.0, f"starts {overlap:g} s before session {other} ends"


def anomaly_points(
    session: ChargingSession,
    flags: int,
    previous: ChargingSession | None,
    config: SessionRulesConfig,
) -> list[Point]:
    """One `anomaly` point per rule in `flags`."""
    offset = session_offset_ns(session.session_id)
    points = []
    for code, bit in RULES.items():
        if flags & bit:
            value, threshold, detail = _measure(bit, session, previous, config)
            points.append(
                anomaly_point(
                    source=session.source,
                    rule=code,
                    subject=session.pdc,
                    at=session.start,
                    value=value,
                    threshold=threshold,
                    detail=detail,
                    session_id=session.session_id,
                    operational_unit=session.operational_unit,
                    station=session.station,
                    offset_ns=offset,
                )
            )
    return points


def session_points(
    session: ChargingSession,
    flags: int,
    previous: ChargingSession | None,
    config: SessionRulesConfig,
) -> list[Point]:
    """The `charging_session` point and the anomalies of a verdict."""
    point = session_point(session, not flags)
    if not flags:
        return [point]
    return [point, *anomaly_points(session, flags, previous, config)]


def _cleared(session: ChargingSession, flags: int, why: str) -> list[Point]:
    offset = session_offset_ns(session.session_id)
    return [
        anomaly_point(
            source=session.source,
            rule=code,
            subject=session.pdc,
            at=session.start,
            detail=f"cleared: {why}",
            session_id=session.session_id,
            operational_unit=session.operational_unit,
            station=session.station,
            offset_ns=offset,
        )
        for code, bit in RULES.items()
        if flags & bit
    ]


def _moved(old: ChargingSession, new: ChargingSession) -> bool:
    """True when the new version's points land on another series or time."""
    return (
        old.start != new.start
        or old.pdc != new.pdc
        or old.station != new.station
        or old.operational_unit != new.operational_unit
        or old.siren != new.siren
    )


def retraction_points(
    old: ChargingSession,
    old_flags: int,
    new: ChargingSession,
    new_flags: int,
    *,
    corrected: bool,
) -> list[Point]:
    """What to overwrite of the previously stored verdict (`old`) before storing the new one;
    `corrected` tells a new version of the session from a re-judgement against neighbours."""
    if _moved(old, new):
        tombstone = session_point(replace(old, energy_kwh=0.0), False)
        return [tombstone, *_cleared(old, old_flags, "the session was corrected")]
    gone = old_flags & ~new_flags
    if not gone:
        return []
    why = "the session was corrected" if corrected else "re-judged against its neighbours"
    return _cleared(old, gone, why)


def _with_previous(
    source: str, memory: Memory, rows: Sequence[int]
) -> list[tuple[int, int, ChargingSession, ChargingSession | None]]:
    """(row, flags, session, previous session when a neighbour rule hit it) of each of `rows`;
    the previous sessions are found for all rows at once."""
    picks = np.asarray(rows, np.int64)
    flags = memory.columns["flags"][picks]
    needs = np.flatnonzero(flags & (DUPS | OVLP))
    previous = np.full(len(rows), -1, np.int64)
    if len(needs):
        previous[needs] = memory.previous_rows(picks[needs])
    return [
        (
            row,
            bits,
            memory.session(source, row),
            None if before < 0 else memory.session(source, before),
        )
        for row, bits, before in zip(rows, flags.tolist(), previous.tolist(), strict=True)
    ]


def new_session_points(
    source: str,
    memory: Memory,
    rows: Sequence[int],
    corrected: Mapping[int, int],
    config: SessionRulesConfig,
    heads: Callable[[int], str],
) -> tuple[list[Point], list[str]]:
    """Points and ready lines of sessions first judged in this batch (`rows` of `memory`);
    `corrected` maps the new row of a session seen before to its old row, whose points are
    corrected first. Accepted new sessions — nearly all of them — become lines straight from
    the columns (`heads` gives the series key of a place number)."""
    picks = np.asarray(rows, np.int64)
    columns = memory.columns
    flags = columns["flags"][picks]
    plain = np.flatnonzero(flags == 0)
    if corrected:
        plain = plain[~np.isin(picks[plain], np.fromiter(corrected, np.int64, len(corrected)))]
    fast = picks[plain]
    sids = memory.sid
    places, inverse = np.unique(columns["place"][fast], return_inverse=True)
    known = [heads(place) for place in places.tolist()]
    lines, deferred = SessionLines.accepted_lines(
        [known[index] for index in inverse.tolist()],
        [sids[row] for row in fast.tolist()],
        columns["start"][fast].tolist(),
        ((columns["end"][fast] - columns["start"][fast]) / 1e9).tolist(),
        columns["energy"][fast].tolist(),
        columns["power"][fast].tolist(),
    )
    slow = np.ones(len(picks), bool)
    slow[plain] = False
    slow[plain[deferred]] = True
    points: list[Point] = []
    for row, bits, session, previous in _with_previous(source, memory, picks[slow].tolist()):
        old_row = corrected.get(row)
        if old_row is not None:
            old_flags = int(columns["flags"][old_row])
            old = memory.session(source, old_row)
            points.extend(retraction_points(old, old_flags, session, bits, corrected=True))
        points.extend(session_points(session, bits, previous, config))
    return points, lines


def rejudged_points(
    source: str, memory: Memory, before: Mapping[int, int], config: SessionRulesConfig
) -> list[Point]:
    """Points of stored sessions whose verdict changed (row → rule bits before)."""
    flags = memory.columns["flags"]
    # those re-judged back to the verdict already stored need no point
    changed = [row for row, old_flags in before.items() if flags[row] != old_flags]
    points: list[Point] = []
    for row, bits, session, previous in _with_previous(source, memory, changed):
        old_flags = before[row]
        if old_flags & ~bits:
            points.extend(retraction_points(session, old_flags, session, bits, corrected=False))
        points.extend(session_points(session, bits, previous, config))
    return points
