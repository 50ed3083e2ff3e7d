"""Pages of session rows as `SessionBatch` columns, without a Python object per session.

Two readers, one per kind of database:

- `CursorPages` (PostgreSQL through psycopg 3, the production path). The database does the
  per-row work: times come as bigint microseconds since the epoch (`EpochMicros`), the
  session id as text, and each row carries only its charge point's id, not the charge
  point's station, operational unit, operator and power: those come once per poll from a
  `PdcDirectory` read in the same REPEATABLE READ snapshot, so every row finds its charge
  point there exactly as the join would have given it (and the directory row is the batch's
  `place_codes`, so the engine reads those strings once per charge point). Rows are fetched
  through psycopg's server-side cursor in binary (no text parsing of numbers) in chunks of
  `CHUNK_ROWS`, transposed with `zip(*rows)` and copied into numpy arrays while the chunk's
  row tuples are still in the CPU cache; a page is the concatenation of its chunks.
- `ResultPages` (SQLite copies, the demo, any other SQLAlchemy database): the joined rows
  through SQLAlchemy's `Result`, datetimes converted a column at a time (`to_ns_array`).

Both wrap driver errors in SQLAlchemy's exception classes, so callers map one family. A
session whose start or end the batch's nanosecond columns cannot hold (before 1677 or after
2262: an operator's typo) is left out of the batch and returned among the page's `rejected`
with the reason, so one bad row never stops the rest; an `updated_at` out of that range (the
database's own clock, which the watermark is made of) raises `DataError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, Connection, Select, cast, func, literal_column
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import CompileError, DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from daemon.errors import DataError
from daemon.records import SessionBatch, to_ns_array

__all__ = [
    "CHUNK_ROWS",
    "CursorPages",
    "EpochMicros",
    "Page",
    "PdcDirectory",
    "ResultPages",
    "aware",
]

# Rows per FETCH of the server-side cursor: small enough that a chunk's row tuples stay in
# the CPU cache while they are transposed (per-session cost grows by half from 2,000-row to
# 50,000-row fetches), large enough that the round trips do not count.
CHUNK_ROWS = 2000

Objects = npt.NDArray[np.object_]


class Page(NamedTuple):
    """A page of rows: the sessions read, those refused ((what, reason) pairs), the number of
    rows (both together) and the keyset position of the last row (updated_at ns, id)."""

    batch: SessionBatch
    rejected: list[tuple[str, str]]
    rows: int
    last: tuple[int, str] | None


def _rejection(session_id: str) -> tuple[str, str]:
    return (
        f"QualiCharge session {session_id}",
        "start or end outside 1677-2262, which the session columns (nanoseconds) cannot hold",
    )


class EpochMicros(FunctionElement[int]):
    """A timestamp column as integer microseconds since the epoch, computed by the database."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_us"


@compiles(EpochMicros)
def _epoch_micros_default(element: EpochMicros, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"no exact epoch microseconds on {compiler.dialect.name}")


@compiles(EpochMicros, "postgresql")
def _epoch_micros_postgresql(element: EpochMicros, compiler: SQLCompiler, **kw: Any) -> str:
    # EXTRACT(EPOCH ...) is numeric since PostgreSQL 14: exact to the microsecond before 1970
    # and after 2038 alike, and the product is a whole number the cast keeps as it is. (Up to
    # PostgreSQL 13 it is a double, which the cast rounds back to the exact microsecond at
    # least within 2^31 s of the epoch, 1901 to 2038; not necessarily beyond.)
    (column,) = element.clauses
    micros = cast(func.extract("epoch", column) * literal_column("1000000"), BigInteger)
    return str(compiler.process(micros, **kw))


def _as_sqlalchemy_error(exc: Exception, statement: str | None, dialect: Any) -> Exception:
    """A driver error as the SQLAlchemy error `Connection.execute` would have raised."""
    error = DBAPIError.instance(
        statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )
    assert isinstance(error, Exception)
    return error


# The microseconds an int64 of nanoseconds can hold (1677-09-21 to 2262-04-11): the batch's
# time columns are nanoseconds, and numpy would wrap a product beyond them around silently.
_MAX_US = np.iinfo(np.int64).max // 1000
_FIRST = datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=int(_MAX_US))
_LAST = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(_MAX_US))


def _updated_outside(ids: Sequence[str], where: npt.NDArray[np.bool_]) -> DataError | None:
    """The error naming the first session whose `updated_at` nanoseconds cannot hold."""
    wrong = np.flatnonzero(where)
    if not len(wrong):
        return None
    return DataError(
        f"QualiCharge session {ids[int(wrong[0])]}: updated_at outside 1677-2262, which the "
        f"watermark (nanoseconds) cannot hold ({len(wrong)} such sessions in the page)"
    )


@dataclass(frozen=True)
class PdcDirectory:
    """The charge points a poll may meet: id → row, and their facts in columns."""

    index: dict[str, int]
    power: npt.NDArray[np.float64]
    station: Objects
    unit: Objects
    siren: Objects
    entity: Objects

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> PdcDirectory:
        """Rows of (pdc, nominal power, station, unit, siren, entity) as returned by SQL."""
        pdcs = [row[0] for row in rows]
        return cls(
            index={pdc: at for at, pdc in enumerate(pdcs)},
            power=np.array([float(row[1]) for row in rows], np.float64),
            station=_objects(row[2] for row in rows),
            unit=_objects(row[3] or row[2][:5] for row in rows),
            siren=_objects(row[4] or "" for row in rows),
            entity=_objects(row[5] or "" for row in rows),
        )


def _objects(values: Any) -> Objects:
    listed = list(values)
    array = np.empty(len(listed), dtype=object)
    array[:] = listed
    return array


class CursorPages:
    """Pages of a psycopg server-side cursor over (id text, start µs, end µs, energy,
    updated µs, pdc) rows, completed from the `PdcDirectory`."""

    def __init__(
        self,
        conn: Connection,
        statement: Select[Any],
        directory_statement: Select[Any],
        *,
        source: str,
        size: int,
    ) -> None:
        self._conn = conn
        self._source = source
        self._size = size
        dialect = conn.dialect
        # One snapshot for the directory and the sessions: a charge point added, moved or
        # reassigned while the poll runs is seen by both or by neither.
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        driver = conn.connection.driver_connection
        assert driver is not None
        # psycopg adapts every parameter type these statements hold (str, int, datetime,
        # UUID) itself, which is why SQLAlchemy has no bind processor for them here: the
        # compiled parameters are what `Connection.execute` would have sent.
        sql, params = _compiled(directory_statement, dialect)
        self._sql: str | None = sql
        try:
            with driver.cursor(binary=True) as cursor:
                self._directory = PdcDirectory.from_rows(cursor.execute(sql, params).fetchall())
            sql, params = _compiled(statement, dialect)
            self._sql = sql
            self._cursor = driver.cursor(name="chargeflux_sessions", binary=True)
            self._cursor.execute(sql, params)
        except dialect.loaded_dbapi.Error as exc:
            raise _as_sqlalchemy_error(exc, self._sql, dialect) from exc

    def fetch(self) -> Page:
        """The next page (shorter than `size` at the end, empty after it)."""
        size = self._size
        ids: list[str] = []
        pdcs: list[str] = []
        numbers = np.empty((4, size), np.int64)  # start, end, updated (µs), directory row
        energy = np.empty(size, np.float64)
        index = self._directory.index
        count = 0
        try:
            while count < size:
                wanted = min(CHUNK_ROWS, size - count)
                rows = self._cursor.fetchmany(wanted)
                chunk = len(rows)
                if not chunk:
                    break
                sid, start, end, kwh, updated, pdc = zip(*rows, strict=True)
                upto = count + chunk
                ids += sid
                pdcs += pdc
                numbers[0, count:upto] = start
                numbers[1, count:upto] = end
                numbers[2, count:upto] = updated
                numbers[3, count:upto] = [index[key] for key in pdc]
                energy[count:upto] = kwh
                count = upto
                if chunk < wanted:
                    break  # a short fetch: the cursor is exhausted
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise _as_sqlalchemy_error(exc, self._sql, self._conn.dialect) from exc
        outside = np.abs(numbers[:3, :count]) > _MAX_US
        if (error := _updated_outside(ids, outside[2])) is not None:
            raise error
        last = (int(numbers[2, count - 1]) * 1000, ids[-1]) if count else None
        rejected: list[tuple[str, str]] = []
        kept = np.flatnonzero(~outside[:2].any(axis=0))
        if len(kept) < count:
            rejected = [_rejection(ids[i]) for i in np.flatnonzero(outside[:2].any(axis=0))]
            numbers, energy = numbers[:, kept], energy[kept]
            picks = kept.tolist()
            ids, pdcs = [ids[i] for i in picks], [pdcs[i] for i in picks]
            count = len(kept)
        times = numbers[:3, :count] * 1000  # µs → ns
        at = numbers[3, :count]
        d = self._directory
        batch = SessionBatch(
            source=self._source,
            session_id=ids,
            pdc=pdcs,
            station=d.station[at].tolist(),
            operational_unit=d.unit[at].tolist(),
            siren=d.siren[at].tolist(),
            entity=d.entity[at].tolist(),
            start_ns=times[0],
            end_ns=times[1],
            energy_kwh=energy[:count],
            max_power_kw=d.power[at],
            updated_ns=times[2],
            place_codes=at,
        )
        return Page(batch, rejected, count + len(rejected), last)

    def close(self) -> None:
        """Close the cursor, then give the connection back (discarded if the cursor failed)."""
        try:
            cursor = getattr(self, "_cursor", None)
            if cursor is not None:
                cursor.close()
        except Exception:
            self._conn.invalidate()  # a broken connection must not go back to the pool
        finally:
            self._conn.close()


def _compiled(statement: Select[Any], dialect: Any) -> tuple[str, dict[str, Any]]:
    """SQL text with the driver's placeholders, and the bound values they stand for."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), compiled.params


class ResultPages:
    """Pages of SQLAlchemy `Result` rows of (id, start, end, energy, updated, pdc, power,
    station, unit, siren, entity), times as datetimes (naive ones are UTC, as SQLite's)."""

    def __init__(self, conn: Connection, statement: Select[Any], *, source: str, size: int):
        self._conn = conn
        self._source = source
        self._size = size
        self._result: CursorResult[Any] = conn.execution_options(yield_per=size).execute(statement)

    def fetch(self) -> Page:
        """The next page (shorter than `size` at the end, empty after it)."""
        rows = self._result.fetchmany(self._size)
        if not rows:
            return Page(SessionBatch.empty(self._source), [], 0, None)
        count = len(rows)
        try:
            updated_ns = to_ns_array([row[4] for row in rows])
        except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
            inside = [row[4] is None or _holdable(row[4]) for row in rows]
            ids = [str(row[0]) for row in rows]
            raise _updated_outside(ids, ~np.array(inside)) or DataError(
                f"QualiCharge sessions: unreadable updated_at among {ids[0]} .. {ids[-1]}"
            ) from None
        last = (int(updated_ns[-1]), str(rows[-1][0]))
        rejected: list[tuple[str, str]] = []
        try:
            start_ns, end_ns = (to_ns_array([row[at] for row in rows]) for at in (1, 2))
        except (OverflowError, ValueError):
            inside = [_holdable(row[1]) and _holdable(row[2]) for row in rows]
            rejected = [
                _rejection(str(row[0])) for row, ok in zip(rows, inside, strict=True) if not ok
            ]
            rows = [row for row, ok in zip(rows, inside, strict=True) if ok]
            if not rows:
                return Page(SessionBatch.empty(self._source), rejected, count, last)
            start_ns, end_ns, updated_ns = (
                to_ns_array([row[at] for row in rows]) for at in (1, 2, 4)
            )
        sid, _, _, energy, _, pdc, power, station, unit, siren, entity = zip(*rows, strict=True)
        batch = SessionBatch(
            source=self._source,
            session_id=[str(value) for value in sid],
            pdc=list(pdc),
            station=list(station),
            operational_unit=[u or s[:5] for u, s in zip(unit, station, strict=True)],
            siren=[value or "" for value in siren],
            entity=[value or "" for value in entity],
            start_ns=start_ns,
            end_ns=end_ns,
            energy_kwh=np.array(energy, np.float64),
            max_power_kw=np.array(power, np.float64),
            updated_ns=updated_ns,
        )
        return Page(batch, rejected, count, last)

    def close(self) -> None:
        try:
            self._result.close()
        finally:
            self._conn.close()


def aware(moment: datetime) -> datetime:
    """A database datetime as an aware one (SQLite hands back naive UTC ones, PostgreSQL
    aware ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _holdable(moment: datetime) -> bool:
    """Whether the batch's nanosecond columns can hold `moment` (as `_MAX_US` says)."""
    return _FIRST <= aware(moment) <= _LAST
