"""The session reader's pages in columns, on SQLite and on PostgreSQL alike: every field of
every session, exact microseconds, watermarks, filters, errors and connections."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from collectors.qualicharge.collector import _database_error
from collectors.qualicharge.db import SessionReader, Watermark
from collectors.qualicharge.simulator import SimulatedDatabase, build_database
from daemon.errors import DataError, UpstreamError
from daemon.records import ChargingSession, SessionBatch
from tests.qualicharge.conftest import config_for

Database = tuple[SimulatedDatabase, str, str | None]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A small simulated QualiCharge database: 12 charge points, 600 sessions."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'qc.sqlite'}", None
    else:
        url, schema = request.getfixturevalue("postgres_url"), f"qc_{uuid.uuid4().hex[:8]}"
    made = build_database(url, schema=schema, pdcs=12, sessions=600)
    yield made, url, schema
    made.engine.dispose()


def _reader(database: Database, **overrides) -> SessionReader:
    made, url, schema = database
    reader = SessionReader(config_for(made, url, db_schema=schema, **overrides))
    # the column-wise driver path is the one PostgreSQL takes
    assert reader.native == url.startswith("postgresql+psycopg")
    return reader


async def _pages(
    reader: SessionReader, after: Watermark | None = None
) -> list[tuple[SessionBatch, Watermark]]:
    """(batch, watermark) of every page; no page may refuse a row."""
    async with contextlib.aclosing(reader.pages(after)) as stream:
        pages = [page async for page in stream]
    assert [page.rejected for page in pages] == [[] for _ in pages]
    return [(page.batch, page.mark) for page in pages]


def _keyset(session: ChargingSession) -> tuple[datetime, uuid.UUID]:
    assert session.updated_at is not None
    return session.updated_at, uuid.UUID(session.session_id)


def _read(pages: list[tuple[SessionBatch, Watermark]]) -> list[ChargingSession]:
    return [session for batch, _ in pages for session in batch.sessions()]


async def test_pages_hold_every_field_of_every_session(database: Database) -> None:
    """Each page is a batch of at most `page_size` sessions in keyset order whose every field
    (charge point facts included) is the database's, with its last row as watermark."""
    made, _, _ = database
    reader = _reader(database, page_size=128)
    pages = await _pages(reader)
    assert [len(batch) for batch, _ in pages] == [128] * 4 + [88]
    expected = sorted(made.sessions.values(), key=_keyset)
    assert _read(pages) == expected
    for batch, mark in pages:
        last = batch.session(len(batch) - 1)
        assert mark == Watermark(last.updated_at, last.session_id)  # type: ignore[arg-type]
        assert batch.start_ns.dtype == batch.updated_ns.dtype == "int64"
        assert batch.energy_kwh.dtype == batch.max_power_kw.dtype == "float64"
    assert reader.engine.pool.checkedout() == 0
    await reader.close()


async def test_place_codes_stand_for_the_charge_point_facts(database: Database) -> None:
    """On PostgreSQL each row carries its charge point's directory row as place code, and
    rows with one code carry the same charge point facts; the SQLite reader gives none."""
    _, url, _ = database
    pages = await _pages(_reader(database, page_size=128))
    for batch, _ in pages:
        if not url.startswith("postgresql"):
            assert batch.place_codes is None
            continue
        assert batch.place_codes is not None
        facts: dict[int, tuple[str, ...]] = {}
        for code, *place in zip(
            batch.place_codes.tolist(),
            batch.pdc,
            batch.station,
            batch.operational_unit,
            batch.siren,
            batch.entity,
            strict=True,
        ):
            assert facts.setdefault(code, tuple(place)) == tuple(place)
        assert len(facts) == len(set(batch.pdc))


async def test_times_round_trip_to_the_microsecond(database: Database) -> None:
    """Start, end and updated_at reach the batch exactly, microseconds included, before
    1970, around 2038 and long after it."""
    made, _, _ = database
    template = next(iter(made.sessions.values()))
    moments = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1901, 12, 13, 20, 45, 51, 1, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2025, 10, 26, 0, 59, 59, 999_999, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 8, 123_457, tzinfo=UTC),
        datetime(2106, 2, 7, 6, 28, 16, 999_999, tzinfo=UTC),
        datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=UTC),
    ]
    after = max(_keyset(s) for s in made.sessions.values())
    stamp = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    assert stamp > after[0]
    odd = [
        replace(
            template,
            session_id=str(uuid.uuid4()),
            start=moment,
            end=moment - timedelta(microseconds=index * 7 + 1),
            updated_at=stamp + timedelta(microseconds=index + 1),
        )
        for index, moment in enumerate(moments)
    ]
    made.add(odd)
    pages = await _pages(_reader(database), Watermark(after[0], str(after[1])))
    read = {s.session_id: s for s in _read(pages)}
    for session in odd:
        assert read[session.session_id] == session
    ((_, mark),) = pages
    last = (stamp + timedelta(microseconds=7)).isoformat()
    assert last.endswith(".000007+00:00")
    assert mark.to_json() == {"updated_at": last, "id": odd[-1].session_id}


async def test_a_start_beyond_nanoseconds_is_refused_alone(database: Database) -> None:
    """A session dated where nanoseconds since 1970 overflow an int64 (after 2262, before
    1677) is refused with its id and the reason, never a wrapped-around time; the rest of the
    page is read and the watermark moves past it, so it does not stop the next polls."""
    made, _, _ = database
    late, early = sorted(made.sessions)[:2]
    s = made.tables.session
    with made.engine.begin() as conn:
        for sid, moment in (
            (late, datetime(2262, 4, 12, tzinfo=UTC)),
            (early, datetime(1600, 1, 1, tzinfo=UTC)),
        ):
            conn.execute(update(s).where(s.c.id == uuid.UUID(sid)).values(start=moment))
    async with contextlib.aclosing(_reader(database, page_size=128).pages(None)) as stream:
        pages = [page async for page in stream]
    rejected = [what for page in pages for what, _ in page.rejected]
    assert sorted(rejected) == sorted(f"QualiCharge session {sid}" for sid in (late, early))
    assert all("1677-2262" in why for page in pages for _, why in page.rejected)
    read = _read([(page.batch, page.mark) for page in pages])
    assert {x.session_id for x in read} == set(made.sessions) - {late, early}
    last = max(made.sessions.values(), key=_keyset)
    assert pages[-1].mark == Watermark(last.updated_at, last.session_id)  # type: ignore[arg-type]
    assert [len(page.batch) + len(page.rejected) for page in pages] == [128] * 4 + [88]


async def test_an_updated_at_beyond_nanoseconds_is_a_data_error(database: Database) -> None:
    """`updated_at` is the watermark: one that nanoseconds cannot hold stops the poll with a
    DataError naming the session, rather than a watermark that would skip or repeat rows."""
    made, _, _ = database
    sid = next(iter(made.sessions))
    s = made.tables.session
    with made.engine.begin() as conn:
        conn.execute(
            update(s)
            .where(s.c.id == uuid.UUID(sid))
            .values(updated_at=datetime(1600, 1, 1, tzinfo=UTC))
        )
    with pytest.raises(DataError, match=f"{sid}: updated_at outside 1677-2262"):
        await _pages(_reader(database))


async def test_watermark_of_a_page_ending_inside_one_updated_at(database: Database) -> None:
    """When the last rows of a page share their `updated_at`, the watermark is the last one's
    (updated_at, id) to the microsecond, and resuming from its JSON reads exactly the rest."""
    made, _, _ = database
    stamp = datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    shared = sorted(made.sessions)[:200]
    s = made.tables.session
    with made.engine.begin() as conn:
        conn.execute(
            update(s).where(s.c.id.in_([uuid.UUID(sid) for sid in shared])).values(updated_at=stamp)
        )
    for sid in shared:
        made.sessions[sid] = replace(made.sessions[sid], updated_at=stamp)
    ordered = sorted(made.sessions.values(), key=_keyset)
    first = next(at for at, session in enumerate(ordered) if session.updated_at == stamp)
    size = first + 150  # the page ends on the 150th of the 200 rows stamped alike
    reader = _reader(database, page_size=size)
    async with contextlib.aclosing(reader.pages(None)) as stream:
        batch, mark, _ = await anext(stream)
    assert len(batch) == size and mark.updated_at == stamp
    assert (
        batch.updated_ns[-1]
        == (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    )
    assert mark.id == ordered[size - 1].session_id == sorted(shared, key=uuid.UUID)[149]
    resumed = Watermark.from_json(mark.to_json())
    assert resumed == mark
    rest = _read(await _pages(reader, resumed))
    assert [s.session_id for s in rest] == [s.session_id for s in ordered[size:]]
    await reader.close()


async def test_unit_from_station_and_empty_operator(database: Database) -> None:
    """A station without operational unit gets the first 5 characters of its id as unit, and
    one without operator an empty SIREN and entity; a soft-deleted one is still read."""
    made, _, _ = database
    pdc = made.fleet.pdcs[0]
    t = made.tables
    with made.engine.begin() as conn:
        conn.execute(
            update(t.station)
            .where(t.station.c.id_station_itinerance == pdc.id_station_itinerance)
            .values(operational_unit_id=None, amenageur_id=None, deleted_at=datetime.now(UTC))
        )
    read = _read(await _pages(_reader(database)))
    mine = [s for s in read if s.station == pdc.id_station_itinerance]
    assert mine and len(read) == len(made.sessions)
    assert {(s.operational_unit, s.siren, s.entity) for s in mine} == {
        (pdc.id_station_itinerance[:5], "", "")
    }


async def test_since_and_start_lookback(database: Database) -> None:
    """`since` bounds the first poll's `updated_at`; `start_lookback_days` the sessions'
    start before the watermark."""
    made, _, _ = database
    # a correction of the oldest session: read after the watermark, unless started too early
    oldest = min(made.sessions.values(), key=lambda s: s.start)
    made.correct([oldest.session_id], at=datetime.now(UTC) - timedelta(seconds=1))
    ordered = sorted(made.sessions.values(), key=_keyset)
    middle = ordered[300].updated_at
    assert middle is not None
    read = _read(await _pages(_reader(database, since=middle)))
    assert read == [s for s in ordered if s.updated_at >= middle]  # type: ignore[operator]
    mark = Watermark(ordered[100].updated_at, ordered[100].session_id)  # type: ignore[arg-type]
    read = _read(await _pages(_reader(database, start_lookback_days=2), mark))
    earliest = mark.updated_at - timedelta(days=2)
    assert read == [s for s in ordered[101:] if s.start >= earliest]
    assert oldest.session_id not in {s.session_id for s in read}


async def test_leaving_early_gives_the_connection_back(database: Database) -> None:
    """Stopping after the first page closes the cursor and returns the connection."""
    reader = _reader(database, page_size=50)
    async with contextlib.aclosing(reader.pages(None)) as stream:
        batch, _, _ = await anext(stream)
    assert len(batch) == 50 and reader.engine.pool.checkedout() == 0
    assert sum(len(b) for b, _ in await _pages(reader)) == 600
    await reader.close()


@pytest.mark.services
async def test_connection_lost_mid_poll_is_an_upstream_error(postgres_url: str) -> None:
    """A backend killed between pages fails the poll as SQLAlchemy's OperationalError (an
    UpstreamError for the scheduler), the connection is not reused, and the next poll reads
    everything."""
    schema = f"qc_{uuid.uuid4().hex[:8]}"
    made = build_database(postgres_url, schema=schema, pdcs=12, sessions=600)
    reader = _reader((made, postgres_url, schema), page_size=50)
    with pytest.raises(OperationalError) as caught:
        async with contextlib.aclosing(reader.pages(None)) as stream:
            async for _ in stream:
                with made.engine.connect() as conn:
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND query LIKE :query "
                            "AND pid <> pg_backend_pid()"
                        ),
                        {"query": "%chargeflux_sessions%"},
                    )
    assert isinstance(_database_error(caught.value), UpstreamError)
    assert reader.engine.pool.checkedout() == 0
    assert sum(len(b) for b, _ in await _pages(reader)) == 600
    await reader.close()
    made.engine.dispose()


@pytest.mark.services
async def test_missing_tables_on_postgresql_are_a_data_error(postgres_url: str) -> None:
    """A PostgreSQL schema without QualiCharge's tables is a DataError, not a retry."""
    from collectors.qualicharge.config import QualiChargeConfig

    config = QualiChargeConfig(
        database_url=postgres_url, db_schema="nowhere", operational_units=["FRABC"], settle_s=0
    )
    reader = SessionReader(config)
    with pytest.raises(ProgrammingError) as caught:
        await _pages(reader)
    assert isinstance(_database_error(caught.value), DataError)
    assert reader.engine.pool.checkedout() == 0
    await reader.close()
