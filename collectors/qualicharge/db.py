"""Reading charging sessions from the QualiCharge database (SQLAlchemy Core, bound parameters).

The tables are those of MTES-MCT/qualicharge (`src/api/qualicharge/schemas/core.py`), by
their own names: `amenageur`, `operationalunit`, `_station`, `_pointdecharge` (the raw
tables: the `station`/`pointdecharge` views hide soft-deleted rows) and `session` (a
TimescaleDB hypertable on `start`, primary key (`id`, `start`)). Only the columns read here
are declared; the simulator creates the same tables.

Soft-deleted stations and charge points are included, as QualiCharge's own TIRUERT flow
does: a station removed from the registry today still delivered the energy of its past
sessions, and that energy still counts.

Sessions are read incrementally in (`updated_at`, `id`) order after a keyset watermark: rows
sharing one `updated_at` across a page edge are neither skipped nor repeated, and a session
updated upstream (a late correction) comes again with its new `updated_at`. Rows updated
less than `settle_s` ago (by the database clock) are left for the next poll: QualiCharge
stamps `updated_at` before its transaction commits, so a slow transaction could otherwise
commit a row behind a watermark already passed. One query per poll streams its rows in
pages of `page_size` (a server-side cursor on PostgreSQL), so memory stays bounded and the
database sorts the delta once. Each page is a `SessionBatch` (columns, built as `pages`
describes), with the watermark of its last row and the rows refused (a start or end no
nanosecond can hold), which the collector dead-letters with the page.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    Text,
    Uuid,
    and_,
    cast,
    create_engine,
    func,
    or_,
    select,
)

from collectors.qualicharge.config import QualiChargeConfig
from collectors.qualicharge.pages import CursorPages, EpochMicros, ResultPages, aware
from daemon.records import SessionBatch, ns_to_dt

__all__ = ["SessionPage", "SessionReader", "Tables", "Watermark", "qualicharge_tables"]


def _stamps() -> list[Column[Any]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


@dataclass(frozen=True)
class Tables:
    """The QualiCharge tables the collector reads."""

    metadata: MetaData
    amenageur: Table
    operationalunit: Table
    station: Table
    pointdecharge: Table
    session: Table


def qualicharge_tables(schema: str | None = None) -> Tables:
    """Table definitions (QualiCharge's names and types), optionally in a PostgreSQL schema."""
    metadata = MetaData(schema=schema)
    prefix = f"{schema}." if schema else ""
    amenageur = Table(
        "amenageur",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("nom_amenageur", String),
        Column("siren_amenageur", String(9)),
        Column("contact_amenageur", String),
        *_stamps(),
    )
    operationalunit = Table(
        "operationalunit",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("code", String(5), nullable=False, unique=True, index=True),
        Column("name", String, nullable=False),
        Column("type", Integer, nullable=False),
        *_stamps(),
    )
    station = Table(
        "_station",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("id_station_itinerance", String, nullable=False, unique=True, index=True),
        Column("nom_station", String, nullable=False),
        Column("nbre_pdc", Integer, nullable=False),
        Column("amenageur_id", Uuid, ForeignKey(f"{prefix}amenageur.id"), index=True),
        Column("operational_unit_id", Uuid, ForeignKey(f"{prefix}operationalunit.id")),
        Column("deleted_at", DateTime(timezone=True)),
        *_stamps(),
    )
    pointdecharge = Table(
        "_pointdecharge",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("id_pdc_itinerance", String, nullable=False, unique=True, index=True),
        Column("puissance_nominale", Float, nullable=False),
        Column("station_id", Uuid, ForeignKey(f"{prefix}_station.id"), index=True),
        Column("deleted_at", DateTime(timezone=True)),
        *_stamps(),
    )
    session = Table(
        "session",
        metadata,
        Column("id", Uuid, nullable=False),
        Column("start", DateTime(timezone=True), nullable=False),
        Column("end", DateTime(timezone=True), nullable=False),
        Column("energy", Float, nullable=False),
        Column("point_de_charge_id", Uuid, ForeignKey(f"{prefix}_pointdecharge.id"), index=True),
        *_stamps(),
        PrimaryKeyConstraint("id", "start", name="ix_session_id_start"),
    )
    return Tables(metadata, amenageur, operationalunit, station, pointdecharge, session)


class SessionPage(NamedTuple):
    """What a poll reads at a time: sessions, the watermark after them, rows refused."""

    batch: SessionBatch
    mark: Watermark
    rejected: list[tuple[str, str]]


@dataclass(frozen=True)
class Watermark:
    """The last (`updated_at`, `id`) read: the next poll starts strictly after it."""

    updated_at: datetime
    id: str

    def to_json(self) -> dict[str, str]:
        return {"updated_at": self.updated_at.isoformat(), "id": self.id}

    @classmethod
    def from_json(cls, value: Any) -> Watermark | None:
        if not value:
            return None
        return cls(datetime.fromisoformat(value["updated_at"]), str(value["id"]))


class SessionReader:
    """Incremental, filtered reads of the `session` table, on one dedicated thread."""

    def __init__(
        self,
        config: QualiChargeConfig,
        *,
        source: str = "qualicharge",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._config = config
        self._source = source
        self._clock = clock
        url = config.database_url.get_secret_value()
        options: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False}
        self.engine: Engine = create_engine(url, **options)
        self.tables = qualicharge_tables(config.db_schema)
        dialect = self.engine.dialect
        # PostgreSQL through psycopg 3 is read column-wise through the driver's cursor
        # (`pages.CursorPages`); any other database through SQLAlchemy's rows.
        self.native = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qualicharge-db")

    def _filter(self) -> Any:
        t = self.tables
        units, sirens = self._config.operational_units, self._config.sirens
        clauses = []
        if units:
            clauses.append(t.operationalunit.c.code.in_(units))
            clauses.append(func.substr(t.station.c.id_station_itinerance, 1, 5).in_(units))
        if sirens:
            clauses.append(t.amenageur.c.siren_amenageur.in_(sirens))
        return or_(*clauses)

    def _unit(self) -> Any:
        t = self.tables
        return func.coalesce(
            t.operationalunit.c.code, func.substr(t.station.c.id_station_itinerance, 1, 5)
        ).label("unit")

    def _station_joins(self, left: Any) -> Any:
        """`left` (holding `_pointdecharge`) joined to its station, unit and operator."""
        t = self.tables
        return (
            left.join(t.station, t.station.c.id == t.pointdecharge.c.station_id)
            .outerjoin(t.operationalunit, t.operationalunit.c.id == t.station.c.operational_unit_id)
            .outerjoin(t.amenageur, t.amenageur.c.id == t.station.c.amenageur_id)
        )

    def directory_statement(self) -> Select[Any]:
        """The configured charge points: (pdc, nominal power, station, unit, siren, entity)."""
        t = self.tables
        return (
            select(
                t.pointdecharge.c.id_pdc_itinerance,
                t.pointdecharge.c.puissance_nominale,
                t.station.c.id_station_itinerance,
                self._unit(),
                t.amenageur.c.siren_amenageur,
                t.amenageur.c.nom_amenageur,
            )
            .select_from(self._station_joins(t.pointdecharge))
            .where(self._filter())
        )

    def statement(self, after: Watermark | None, upper: datetime) -> Select[Any]:
        """The sessions after `after` and updated at or before `upper`, in keyset order.

        On PostgreSQL through psycopg: (id as text, start, end, energy, updated_at, pdc), times
        as epoch microseconds, the charge point's facts left to `directory_statement`.
        Elsewhere: (id, start, end, energy, updated_at, pdc, power, station, unit, siren,
        entity), times as datetimes."""
        t = self.tables
        s, pdc = t.session, t.pointdecharge
        if self.native:
            columns: list[Any] = [
                # text, not a UUID object to build and format per row
                cast(s.c.id, Text),
                EpochMicros(s.c.start),
                EpochMicros(s.c.end),
                s.c.energy,
                EpochMicros(s.c.updated_at),
                pdc.c.id_pdc_itinerance,
            ]
        else:
            columns = [
                s.c.id,
                s.c.start,
                s.c.end,
                s.c.energy,
                s.c.updated_at,
                pdc.c.id_pdc_itinerance,
                pdc.c.puissance_nominale,
                t.station.c.id_station_itinerance,
                self._unit(),
                t.amenageur.c.siren_amenageur,
                t.amenageur.c.nom_amenageur,
            ]
        statement = (
            select(*columns)
            .select_from(self._station_joins(s.join(pdc, pdc.c.id == s.c.point_de_charge_id)))
            .where(self._filter(), s.c.updated_at <= upper)
            .order_by(s.c.updated_at, s.c.id)
        )
        if after is not None:
            statement = statement.where(
                or_(
                    s.c.updated_at > after.updated_at,
                    and_(s.c.updated_at == after.updated_at, s.c.id > uuid.UUID(after.id)),
                )
            )
            if self._config.start_lookback_days is not None:
                earliest = after.updated_at - timedelta(days=self._config.start_lookback_days)
                statement = statement.where(s.c.start >= earliest)
        elif self._config.since is not None:
            statement = statement.where(s.c.updated_at >= self._config.since)
        return statement

    def _now(self) -> datetime:
        """The database's clock (SQLite has none worth the name: the local one)."""
        if self._clock is not None:
            return self._clock()
        if self.engine.dialect.name == "sqlite":
            return datetime.now(UTC)
        with self.engine.connect() as conn:
            return aware(conn.execute(select(func.now())).scalar_one())

    def _open(self, after: Watermark | None) -> CursorPages | ResultPages:
        upper = self._now() - timedelta(seconds=self._config.settle_s)
        statement = self.statement(after, upper)
        size = self._config.page_size
        conn = self.engine.connect()
        try:
            if self.native:
                return CursorPages(
                    conn, statement, self.directory_statement(), source=self._source, size=size
                )
            return ResultPages(conn, statement, source=self._source, size=size)
        except BaseException:
            conn.close()
            raise

    async def pages(self, after: Watermark | None) -> AsyncIterator[SessionPage]:
        """Pages of sessions after `after`, each with the watermark of its last row (rejected
        rows included: they are not read again) and the rows it refused. The next page is
        fetched while the caller handles the current one."""
        loop = asyncio.get_running_loop()
        size = self._config.page_size
        reader = await loop.run_in_executor(self._executor, self._open, after)
        try:
            pending = loop.run_in_executor(self._executor, reader.fetch)
            while True:
                page = await pending
                if page.last is None:
                    return
                full = page.rows == size
                if full:
                    pending = loop.run_in_executor(self._executor, reader.fetch)
                # the last row's (updated_at, id): the page is in keyset order
                mark = Watermark(ns_to_dt(page.last[0]), page.last[1])
                yield SessionPage(page.batch, mark, page.rejected)
                if not full:
                    return
        finally:
            await loop.run_in_executor(self._executor, reader.close)

    async def directory(self) -> dict[str, tuple[str, str]]:
        """Charge point → (station, operational unit), for the configured filter."""
        statement = self.directory_statement()

        def read() -> dict[str, tuple[str, str]]:
            with self.engine.connect() as conn:
                return {
                    pdc: (station, unit) for pdc, _, station, unit, _, _ in conn.execute(statement)
                }

        return await asyncio.get_running_loop().run_in_executor(self._executor, read)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.dispose)
        self._executor.shutdown(wait=False)
