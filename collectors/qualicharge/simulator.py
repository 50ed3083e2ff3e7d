"""The QualiCharge simulator: a QualiCharge-shaped database and the status API.

`build_database()` creates QualiCharge's tables (`amenageur`, `operationalunit`, `_station`,
`_pointdecharge`, `session`, and the `station`/`pointdecharge` views that hide soft-deleted
rows) in PostgreSQL or SQLite, and fills them with a fake fleet and realistic sessions with
known proportions of each anomaly (`fake.AnomalyMix`), some soft-deleted stations, and late
corrections (sessions whose energy was rewritten after the fact, with a later `updated_at`).
`correct()` and `add()` change it between polls, as QualiCharge's API would.

`run_simulator()` does both for `chargeflux demo` and the tests: an SQLite (or given)
database, and the status API (`status_api.StatusApi`) on a free loopback port.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert, text, update
from sqlalchemy.schema import CreateSchema

from collectors.qualicharge.db import Tables, qualicharge_tables
from collectors.qualicharge.fake import AnomalyMix, Fleet, make_fleet, make_sessions
from collectors.qualicharge.status_api import StatusApi, run_status_api
from daemon.records import ChargingSession

__all__ = ["SimulatedDatabase", "Simulator", "build_database", "run_simulator"]

_NAMESPACE = uuid.UUID("6f1c3a52-9d57-4a55-9a6e-3a9c2f0e7b11")


def _uid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


@dataclass
class SimulatedDatabase:
    """A filled QualiCharge database and what was put in it."""

    engine: Engine
    tables: Tables
    fleet: Fleet
    sessions: dict[str, ChargingSession]  # latest version of every session, by id

    def add(self, sessions: Sequence[ChargingSession]) -> None:
        """Insert new sessions (their `updated_at` as given)."""
        rows = [_session_row(session) for session in sessions]
        with self.engine.begin() as conn:
            for first in range(0, len(rows), 10_000):
                conn.execute(insert(self.tables.session), rows[first : first + 10_000])
        self.sessions.update((session.session_id, session) for session in sessions)

    def correct(
        self, ids: Sequence[str], *, factor: float = 1.5, at: datetime | None = None
    ) -> list[ChargingSession]:
        """Rewrite the energy of sessions `ids` (x `factor`), stamped `at` (default now)."""
        stamp = at or datetime.now(UTC)
        s = self.tables.session
        changed = []
        with self.engine.begin() as conn:
            for sid in ids:
                old = self.sessions[sid]
                new = replace(old, energy_kwh=round(old.energy_kwh * factor, 3), updated_at=stamp)
                conn.execute(
                    update(s)
                    .where(s.c.id == uuid.UUID(sid), s.c.start == old.start)
                    .values(energy=new.energy_kwh, updated_at=stamp)
                )
                self.sessions[sid] = new
                changed.append(new)
        return changed


def _session_row(session: ChargingSession) -> dict[str, object]:
    updated = session.updated_at or max(session.start, session.end)
    return {
        "id": uuid.UUID(session.session_id),
        "start": session.start,
        "end": session.end,
        "energy": session.energy_kwh,
        "point_de_charge_id": _uid("pdc", session.pdc),
        "created_at": min(updated, max(session.start, session.end)),
        "updated_at": updated,
    }


def create_schema(engine: Engine, schema: str | None = None) -> Tables:
    """Create QualiCharge's tables and views (in `schema` on PostgreSQL)."""
    tables = qualicharge_tables(schema)
    with engine.begin() as conn:
        if schema and engine.dialect.name == "postgresql":
            conn.execute(CreateSchema(schema, if_not_exists=True))
        tables.metadata.create_all(conn)
        quote = engine.dialect.identifier_preparer.quote
        prefix = f"{quote(schema)}." if schema else ""
        for view, table in (("station", "_station"), ("pointdecharge", "_pointdecharge")):
            conn.execute(
                text(
                    f"CREATE VIEW {prefix}{view} AS "  # noqa: S608 (identifiers, quoted)
                    f"SELECT * FROM {prefix}{quote(table)} WHERE deleted_at IS NULL"
                )
            )
    return tables


def build_database(
    url: str,
    *,
    schema: str | None = None,
    pdcs: int = 60,
    sessions: int = 6000,
    operational_units: int = 3,
    seed: int = 1,
    mix: AnomalyMix | None = None,
    start: datetime | None = None,
    days: float = 30.0,
    corrections: float = 0.02,
) -> SimulatedDatabase:
    """Create and fill a QualiCharge database at `url` (an SQLAlchemy URL)."""
    options = {"connect_args": {"check_same_thread": False}} if url.startswith("sqlite") else {}
    engine = create_engine(url, **options)
    tables = create_schema(engine, schema)
    fleet = make_fleet(pdcs, operational_units=operational_units, seed=seed)
    begin = start or (datetime.now(UTC) - timedelta(days=days + 2)).replace(
        minute=0, second=0, microsecond=0
    )
    made = make_sessions(fleet, sessions, start=begin, days=days, seed=seed + 1, mix=mix)
    rng = random.Random(seed + 2)
    final = []
    for session in made:
        if rng.random() < corrections:  # rewritten days later: a late correction
            assert session.updated_at is not None
            session = replace(
                session,
                energy_kwh=round(session.energy_kwh * rng.uniform(0.6, 1.4), 3),
                updated_at=session.updated_at + timedelta(days=rng.uniform(1, 2)),
            )
        final.append(session)
    now = datetime.now(UTC)
    amenageurs = {siren: name for name, siren in fleet.amenageurs}
    with engine.begin() as conn:
        conn.execute(
            insert(tables.amenageur),
            [
                {
                    "id": _uid("amenageur", siren),
                    "nom_amenageur": name,
                    "siren_amenageur": siren,
                    "contact_amenageur": f"contact@{siren}.example.org",
                    "created_at": now,
                    "updated_at": now,
                }
                for siren, name in amenageurs.items()
            ],
        )
        conn.execute(
            insert(tables.operationalunit),
            [
                {
                    "id": _uid("unit", code),
                    "code": code,
                    "name": f"Unit {code}",
                    "type": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for code in fleet.operational_units
            ],
        )
        stations = {pdc.id_station_itinerance: pdc for pdc in fleet.pdcs}
        conn.execute(
            insert(tables.station),
            [
                {
                    "id": _uid("station", station),
                    "id_station_itinerance": station,
                    "nom_station": f"Station {station[-6:]}",
                    "nbre_pdc": 2,
                    "amenageur_id": _uid("amenageur", pdc.siren),
                    "operational_unit_id": _uid("unit", pdc.operational_unit),
                    "deleted_at": now if pdc.station_deleted else None,
                    "created_at": now,
                    "updated_at": now,
                }
                for station, pdc in stations.items()
            ],
        )
        conn.execute(
            insert(tables.pointdecharge),
            [
                {
                    "id": _uid("pdc", pdc.id_pdc_itinerance),
                    "id_pdc_itinerance": pdc.id_pdc_itinerance,
                    "puissance_nominale": pdc.puissance_nominale,
                    "station_id": _uid("station", pdc.id_station_itinerance),
                    "deleted_at": now if pdc.station_deleted else None,
                    "created_at": now,
                    "updated_at": now,
                }
                for pdc in fleet.pdcs
            ],
        )
    database = SimulatedDatabase(engine, tables, fleet, {})
    database.add(final)
    return database


@dataclass
class Simulator:
    """A running simulator: the database and the status API."""

    database: SimulatedDatabase
    database_url: str
    api: StatusApi
    base_url: str

    @property
    def operational_units(self) -> list[str]:
        return list(self.database.fleet.operational_units)


@asynccontextmanager
async def run_simulator(
    workdir: Path,
    *,
    url: str | None = None,
    pdcs: int = 60,
    sessions: int = 6000,
    seed: int = 1,
) -> AsyncIterator[Simulator]:
    """A filled database (SQLite in `workdir` unless `url`) and the API on a free port."""
    if url is None:
        path = workdir / "qualicharge.sqlite"
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        url = f"sqlite:///{path}"
    database = await asyncio.to_thread(build_database, url, pdcs=pdcs, sessions=sessions, seed=seed)
    api = StatusApi(database.fleet)
    try:
        async with run_status_api(api) as base_url:
            yield Simulator(database, url, api, base_url)
    finally:
        database.engine.dispose()
