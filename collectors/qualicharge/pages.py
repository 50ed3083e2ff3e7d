"""Pages of session rows as `SessionBatch` columns, without a Python object per session.

Two readers, one per kind of database:

- `CursorPages` (PostgreSQL through psycopg 3, the production path). The database does the
  per-row work: times come as bigint microseconds since the epoch (`EpochMicros`), the
  session id as text, and each row carries only its charge point's id, not the charge
  point's station, operational unit, operator and power: those come once per poll from a
  `PdcDirectory` read in the same REPEATABLE READ snapshot, so every row finds its charge
  point there exactly as the join would have given it. Rows are fetched through psycopg's
  server-side cursor in binary (no text parsing of numbers) in chunks of `CHUNK_ROWS`,
  transposed with `zip(*rows)` and copied into numpy arrays while the chunk's row tuples
  are still in the CPU cache; a page is the concatenation of its chunks.
- `ResultPages` (SQLite copies, the demo, any other SQLAlchemy database): the joined rows
  through SQLAlchemy's `Result`, datetimes converted a column at a time (`to_ns_array`).

Both wrap driver errors in SQLAlchemy's exception classes, so callers map one family, and
raise `DataError` for a time the batch's nanosecond columns cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    "PdcDirectory",
    "ResultPages",
]

# Rows per FETCH of the server-side cursor: small enough that a chunk's row tuples stay in
# the CPU cache while they are transposed (per-session cost grows by half from 2,000-row to
# 50,000-row fetches), large enough that the round trips do not count.
CHUNK_ROWS = 2000

Objects = npt.NDArray[np.object_]


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


def _outside(micros: npt.NDArray[np.int64], ids: Sequence[str]) -> DataError | None:
    """The error naming the first session with a time nanoseconds cannot hold, if any."""
    wrong = np.flatnonzero((np.abs(micros) > _MAX_US).any(axis=0))
    if not len(wrong):
        return None
    return DataError(
        f"QualiCharge session {ids[int(wrong[0])]}: a time outside 1677-2262, which the "
        f"session columns (nanoseconds) cannot hold ({len(wrong)} such sessions in the page)"
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

    def fetch(self) -> SessionBatch:
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
        micros = numbers[:3, :count]
        if (error := _outside(micros, ids)) is not None:
            raise error
        times = micros * 1000  # µs → ns
        at = numbers[3, :count]
        d = self._directory
        return SessionBatch(
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
        )

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

    def fetch(self) -> SessionBatch:
        """The next page (shorter than `size` at the end, empty after it)."""
        rows = self._result.fetchmany(self._size)
        if not rows:
            return SessionBatch.empty(self._source)
        sid, start, end, energy, updated, pdc, power, station, unit, siren, entity = zip(
            *rows, strict=True
        )
        try:
            start_ns, end_ns, updated_ns = (to_ns_array(column) for column in (start, end, updated))
        except (OverflowError, ValueError) as exc:  # pandas' OutOfBoundsDatetime is a ValueError
            raise DataError(
                f"QualiCharge sessions: a time outside 1677-2262, which the session columns "
                f"(nanoseconds) cannot hold ({exc})"
            ) from None
        return SessionBatch(
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

    def close(self) -> None:
        try:
            self._result.close()
        finally:
            self._conn.close()
