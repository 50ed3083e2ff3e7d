"""The benchmark data set: realistic chargeflux records, built deterministically.

The mix follows the InfluxDB data model of DESIGN.md: Enedis load curves (one emit per PRM
and 7-day window, as the collector fetches them), QualiCharge statuses and charging sessions
(pages of a few hundred), BlueCurrent status bursts (many fields, two of them strings) and a
few anomalies. Cardinality is bounded and realistic (a few thousand series). The same records
feed every contender: `Point`s for the engine, `influxdb_client.Point`s for the WriteApi
baseline, and the engine's own line protocol, pre-encoded, for the plain HTTP client.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from daemon.points import Point

__all__ = ["Emit", "build_emits", "count_points", "iter_emits"]

_T0 = 1_782_864_000 * 1_000_000_000  # 2026-07-01T00:00:00Z
_HALF_HOUR = 1800 * 1_000_000_000
_STATES = ("en_service", "hors_service", "inconnu")
_OCCUPATION = ("libre", "occupe", "reserve", "inconnu")
_ACTIVITIES = ("available", "charging", "offline", "error", "unavailable")


@dataclass(frozen=True)
class Emit:
    """One collector call: the source that emits it and its points."""

    source: str
    points: list[Point]


def _load_curves(rng: random.Random, prms: int, weeks: int) -> Iterator[Emit]:
    for week in range(weeks):
        for index in range(prms):
            prm = f"{25_000_000_000_000 + index * 7919:014d}"
            for direction in ("consumption", "production") if index % 5 == 0 else ("consumption",):
                start = _T0 + week * 336 * _HALF_HOUR
                points = []
                for slot in range(336):
                    hour = (slot // 2) % 24
                    power = round(rng.uniform(0, 9000), 1)
                    points.append(
                        Point(
                            "enedis_load_curve",
                            {
                                "direction": direction,
                                "period": "HC" if hour < 6 or hour >= 22 else "HP",
                                "prm": prm,
                            },
                            {"power_w": power, "energy_wh": power / 2, "interval_s": 1800},
                            start + slot * _HALF_HOUR,
                        )
                    )
                yield Emit("enedis", points)


def _units(count: int) -> list[tuple[str, str, str, str]]:
    """(operational unit, station, pdc, siren) for `count` charge points."""
    out = []
    for index in range(count):
        unit = f"FR{'ABCDEFGHIJ'[index % 10]}{'KLMNOPQRST'[(index // 10) % 10]}{index % 7}"
        station = f"{unit}P{index // 4:05d}"
        out.append((unit, station, f"{station}{index % 4 + 1:02d}", f"{800_000_000 + index // 40}"))
    return out


def _statuses(
    rng: random.Random, pdcs: list[tuple[str, str, str, str]], pages: int
) -> Iterator[Emit]:
    for page in range(pages):
        points = []
        for offset, (unit, station, pdc, _siren) in enumerate(
            pdcs[(page * 250) % len(pdcs) :][:250]
        ):
            state = rng.choice(_STATES)
            occupation = rng.choice(_OCCUPATION)
            points.append(
                Point(
                    "qualicharge_status",
                    {"operational_unit": unit, "pdc": pdc, "station": station},
                    {
                        "etat_pdc": state,
                        "occupation_pdc": occupation,
                        "in_service": int(state == "en_service"),
                        "occupied": int(occupation == "occupe"),
                    },
                    _T0 + page * 60_000_000_000 + offset * 1_000_000,
                )
            )
        yield Emit("qualicharge_status", points)


def _sessions(
    rng: random.Random, pdcs: list[tuple[str, str, str, str]], pages: int
) -> Iterator[Emit]:
    serial = 0
    for page in range(pages):
        points = []
        for _ in range(500):
            unit, station, pdc, siren = pdcs[rng.randrange(len(pdcs))]
            serial += 1
            duration = rng.uniform(300, 36_000)
            energy = round(rng.uniform(0.5, 80), 3)
            points.append(
                Point(
                    "charging_session",
                    {
                        "operational_unit": unit,
                        "pdc": pdc,
                        "siren": siren,
                        "source": "qualicharge",
                        "station": station,
                    },
                    {
                        "energy_kwh": energy,
                        "duration_s": round(duration, 1),
                        "max_power_kw": 22.0,
                        "session_id": f"{serial:08x}-4b1e-9c1d-{page:012x}",
                        "accepted": energy < 75,
                    },
                    _T0 + page * 3_600_000_000_000 + serial * 7_000_003,
                )
            )
        yield Emit("qualicharge", points)


def _bluecurrent(rng: random.Random, evses: int, bursts: int) -> Iterator[Emit]:
    for burst in range(bursts):
        points = []
        for index in range(100):
            evse = f"BCU{(burst * 100 + index) % evses:06d}"
            current = round(rng.uniform(0, 32), 2)
            points.append(
                Point(
                    "bluecurrent_status",
                    {"evse_id": evse},
                    {
                        "voltage_v1": 230.1,
                        "voltage_v2": 229.8,
                        "voltage_v3": 231.0,
                        "current_a1": current,
                        "current_a2": current,
                        "current_a3": current,
                        "power_kw": round(current * 0.69, 3),
                        "energy_kwh": round(rng.uniform(0, 60), 3),
                        "max_usage_a": 32.0,
                        "smartcharging_max_usage_a": 16.0,
                        "max_offline_a": 8.0,
                        "total_cost_eur": round(rng.uniform(0, 40), 2),
                        "activity": rng.choice(_ACTIVITIES),
                        "vehicle_status": rng.choice("ABCDEF"),
                    },
                    _T0 + burst * 10_000_000_000 + index * 1_000,
                )
            )
        yield Emit("bluecurrent", points)


def iter_emits(total: int, seed: int = 20261123) -> Iterator[Emit]:
    """About `total` points as emits, sources interleaved as they would arrive (lazily)."""
    rng = random.Random(seed)
    pdcs = _units(2000)
    share = {"enedis": 0.45, "qualicharge_status": 0.25, "qualicharge": 0.2, "bluecurrent": 0.1}
    prms = 400
    weeks = max(1, round(total * share["enedis"] / (336 * prms * 1.2)))
    streams = [
        _load_curves(rng, prms, weeks),
        _statuses(rng, pdcs, round(total * share["qualicharge_status"] / 250)),
        _sessions(rng, pdcs, round(total * share["qualicharge"] / 500)),
        _bluecurrent(rng, 300, round(total * share["bluecurrent"] / 100)),
    ]
    while streams:
        for stream in list(streams):
            item = next(stream, None)
            if item is None:
                streams.remove(stream)
            else:
                yield item


def build_emits(total: int, seed: int = 20261123) -> list[Emit]:
    """`iter_emits` as a list (the same records for every contender)."""
    return list(iter_emits(total, seed))


def count_points(emits: list[Emit]) -> int:
    return sum(len(emit.points) for emit in emits)
