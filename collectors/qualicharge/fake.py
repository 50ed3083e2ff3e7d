"""Realistic fake QualiCharge data: a fleet (amenageurs, operational units, stations, charge
points) and charging sessions with known proportions of each anomaly.

Used by the simulator (which writes it into a QualiCharge-shaped database), by `chargeflux
demo`, by the tests and by the benchmark. Deterministic for a given seed.

Each charge point gets a sequence of sessions separated by idle gaps; a share of them is
then bent into an anomaly on purpose (`AnomalyMix`): negative durations (with and without
energy, i.e. NEGS and ODUS), energy over 1000 kWh (ENEU), slightly above what the charge
point can deliver (ENEA) or far above it (ENEX), exact duplicates (DUPS), sessions that start
before the previous one ends (OVLP) and zero-duration sessions.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from daemon.records import ChargingSession

__all__ = ["AnomalyMix", "Fleet", "Pdc", "make_fleet", "make_sessions", "valid_siren"]

_POWERS = (7.4, 11.0, 22.0, 22.0, 50.0, 150.0)


@dataclass(frozen=True, slots=True)
class Pdc:
    """A charge point and what identifies its station and operator."""

    id_pdc_itinerance: str
    puissance_nominale: float
    id_station_itinerance: str
    operational_unit: str
    siren: str
    nom_amenageur: str
    station_deleted: bool = False


@dataclass
class Fleet:
    """Operators, their operational units and charge points."""

    amenageurs: list[tuple[str, str]]  # (nom_amenageur, siren)
    operational_units: list[str]
    pdcs: list[Pdc]

    @property
    def stations(self) -> list[str]:
        return sorted({pdc.id_station_itinerance for pdc in self.pdcs})


@dataclass(frozen=True)
class AnomalyMix:
    """Share of sessions bent into each anomaly (the rest are ordinary sessions)."""

    negs: float = 0.004  # negative duration, energy <= 1 kWh
    odus: float = 0.004  # negative duration, energy > 1 kWh
    eneu: float = 0.003
    enea: float = 0.006
    enex: float = 0.004
    dups: float = 0.005
    ovlp: float = 0.006
    zero: float = 0.003  # zero duration (flagged ENEA when energy > 0)
    shares: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "shares",
            {
                "negs": self.negs,
                "odus": self.odus,
                "eneu": self.eneu,
                "enea": self.enea,
                "enex": self.enex,
                "dups": self.dups,
                "ovlp": self.ovlp,
                "zero": self.zero,
            },
        )


def valid_siren(rng: random.Random) -> str:
    """A random SIREN that passes the Luhn check (as CARBURE and TIRUERT require)."""
    digits = [rng.randrange(10) for _ in range(8)]
    for last in range(10):
        candidate = [*digits, last]
        total = 0
        for index, digit in enumerate(reversed(candidate)):
            doubled = digit * 2 if index % 2 else digit
            total += doubled - 9 if doubled > 9 else doubled
        if total % 10 == 0:
            return "".join(map(str, candidate))
    raise AssertionError("unreachable")  # pragma: no cover


def make_fleet(
    pdcs: int = 200,
    *,
    operational_units: int = 3,
    seed: int = 1,
    deleted_stations: float = 0.05,
) -> Fleet:
    """`pdcs` charge points (2 per station) spread over operational units of distinct
    operators; a share of the stations is soft-deleted."""
    rng = random.Random(seed)
    amenageurs: list[tuple[str, str]] = []
    codes: list[str] = []
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    for number in range(operational_units):
        code = "FR" + "".join(rng.choice(letters) for _ in range(2)) + str(number % 10)
        while code in codes:
            code = "FR" + "".join(rng.choice(letters) for _ in range(2)) + str(number % 10)
        codes.append(code)
        amenageurs.append((f"Opérateur {code[2:]}", valid_siren(rng)))
    made: list[Pdc] = []
    for index in range(pdcs):
        unit = index % operational_units
        code = codes[unit]
        station_number = index // 2
        station = f"{code}P{station_number:06d}"
        power = rng.choice(_POWERS)
        if index % 2:
            power = made[-1].puissance_nominale
            deleted = made[-1].station_deleted
        else:
            # the second station is always soft-deleted (when any are), so there is one
            deleted = rng.random() < deleted_stations or (
                station_number == 1 and deleted_stations > 0
            )
        made.append(
            Pdc(
                id_pdc_itinerance=f"{code}E{station_number:06d}{index % 2 + 1}",
                puissance_nominale=power,
                id_station_itinerance=station,
                operational_unit=code,
                siren=amenageurs[unit][1],
                nom_amenageur=amenageurs[unit][0],
                station_deleted=deleted,
            )
        )
    return Fleet(amenageurs, codes, made)


def make_sessions(
    fleet: Fleet,
    count: int,
    *,
    start: datetime = datetime(2025, 3, 1, tzinfo=UTC),
    days: float = 30.0,
    seed: int = 2,
    mix: AnomalyMix | None = None,
    source: str = "qualicharge",
) -> list[ChargingSession]:
    """`count` sessions over `days` from `start`, grouped by charge point in time order."""
    rng = random.Random(seed)
    mix = mix or AnomalyMix()
    thresholds = []
    total = 0.0
    for name, share in mix.shares.items():
        total += share
        thresholds.append((total, name))
    pdcs = fleet.pdcs
    base, extra = divmod(count, len(pdcs))
    plan = [
        (pdc, slot, base + (index < extra))
        for index, pdc in enumerate(pdcs)
        for slot in range(base + (index < extra))
    ]
    sessions: list[ChargingSession] = []
    for pdc, slot, per_pdc in plan:
        step = days * 86_400 / per_pdc
        begin = start + timedelta(seconds=int(slot * step + rng.random() * step * 0.3))
        minutes = rng.randint(10, max(10, int(min(600.0, step / 60 * 0.6))))
        end = begin + timedelta(seconds=minutes * 60 + rng.randint(0, 59))
        power = pdc.puissance_nominale
        hours = (end - begin).total_seconds() / 3600
        energy = round(hours * power * rng.uniform(0.05, 0.9), 3)
        draw = rng.random()
        kind = next((name for limit, name in thresholds if draw < limit), "")
        previous = sessions[-1] if sessions and sessions[-1].pdc == pdc.id_pdc_itinerance else None
        if kind in ("negs", "odus"):
            end = begin - timedelta(seconds=rng.randint(1, 3600))
            energy = round(rng.uniform(0.0, 1.0) if kind == "negs" else rng.uniform(2, 40), 3)
        elif kind == "eneu":
            energy = round(rng.uniform(1000.5, 4000), 3)
        elif kind == "enea":
            energy = round(hours * power * rng.uniform(1.12, 1.9), 3)
        elif kind == "enex":
            energy = round(max(55.0, hours * power * rng.uniform(2.2, 5)), 3)
        elif kind == "zero":
            end = begin
        elif kind == "dups" and previous is not None:
            begin, end = previous.start, previous.end
        elif kind == "ovlp" and previous is not None and previous.end > previous.start:
            begin = previous.end - (previous.end - previous.start) / 2
            end = begin + timedelta(minutes=rng.randint(10, 120))
        sessions.append(
            ChargingSession(
                source=source,
                session_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                pdc=pdc.id_pdc_itinerance,
                station=pdc.id_station_itinerance,
                operational_unit=pdc.operational_unit,
                siren=pdc.siren,
                start=begin,
                end=end,
                energy_kwh=float(energy),
                max_power_kw=power,
                updated_at=max(begin, end) + timedelta(seconds=rng.randint(60, 7200)),
                entity=pdc.nom_amenageur,
            )
        )
    return sessions
