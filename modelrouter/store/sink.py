"""Batches of call rows into the store: one transaction per batch, roll-ups included.

A batch is its ``calls`` rows plus the roll-up increments they make, written in one
transaction, so the roll-ups are always the sum of the stored rows. The rows go in by
the fastest way each engine has: PostgreSQL's binary COPY (asyncpg), SQLite's
``executemany`` of one prepared multi-column insert; the statements come from the
Core tables in :mod:`modelrouter.store.schema`.

Fresh records from the queue cannot be in the store yet (their ids are new), so they
go straight in. Records replayed from the spool may be (a batch whose commit was
sent but never confirmed was spooled too), so :meth:`Sink.write` with
``dedupe=True`` first drops the ids the store already has, and counts only the rest in
the roll-ups: each record lands exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelrouter.store.record import COLUMNS, Row
from modelrouter.store.rollup import COLUMNS as ROLLUP_COLUMNS
from modelrouter.store.rollup import HIST, KEY, SUMS, rollup_rows
from modelrouter.store.schema import calls, usage_rollup

DEDUPE_CHUNK = 500
"""Ids per ``IN (...)`` lookup when replaying (well under every engine's limit)."""
CALLS_CHUNK = 1000
ROLLUP_CHUNK = 500
"""Rows per multi-row INSERT on SQLite: 29 000 and 25 500 parameters, under SQLite's
default limit of 32 766 variables."""


def _multi_row(sql: str, n: int) -> str:
    """A compiled one-row ``INSERT ... VALUES (?, ...) [tail]`` made to insert ``n`` rows."""
    head, values, rest = sql.partition(" VALUES ")
    end = rest.index(")") + 1  # the placeholders hold no parenthesis
    return head + values + ", ".join([rest[:end]] * n) + rest[end:]


class BadRows(Exception):
    """The store refused the rows themselves (not the connection): retrying will not help."""


_DATA_ERRORS = (
    sa_exc.IntegrityError,
    sa_exc.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    # Raised by asyncpg's encoders before anything is sent (a value out of range).
    OverflowError,
    ValueError,
    TypeError,
)


def is_data_error(err: BaseException) -> bool:
    """Whether ``err`` blames the data (a constraint or a value) rather than the store.

    Looks through SQLAlchemy's wrapper to the driver's own exception.
    """
    seen: BaseException | None = err
    for _ in range(3):
        if seen is None:
            return False
        if isinstance(seen, _DATA_ERRORS):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def _upsert(engine: AsyncEngine) -> str:
    """The roll-up upsert for this engine: one statement, compiled once, run with
    positional rows (SQLAlchemy's per-row parameter handling would cost several
    microseconds a record)."""
    dialect = engine.dialect.name
    ins: Any = (postgresql if dialect == "postgresql" else sqlite).insert(usage_rollup)
    stmt = ins.on_conflict_do_update(
        index_elements=list(KEY),
        set_={c: usage_rollup.c[c] + ins.excluded[c] for c in SUMS + HIST},
    )
    compiled = stmt.compile(dialect=engine.dialect)
    assert tuple(compiled.positiontup or ()) == ROLLUP_COLUMNS
    return str(compiled)


class Sink:
    """Writes batches into one store over one dedicated connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._conn: AsyncConnection | None = None
        self._upsert = _upsert(engine)
        compiled = insert(calls).compile(dialect=engine.dialect)
        assert tuple(compiled.positiontup or ()) == COLUMNS or self.dialect == "postgresql"
        self._insert_sql = str(compiled)

    async def write(self, rows: Sequence[Row], *, dedupe: bool = False) -> int:
        """Store ``rows`` and their roll-ups in one transaction; return how many were new.

        Raises :class:`BadRows` when the store refuses the data, and whatever the
        driver raises when the store cannot be reached (the connection is dropped:
        the next write opens a new one).
        """
        conn = await self._connection()
        try:
            async with conn.begin():
                if dedupe:
                    rows = await self._new_only(conn, rows)
                if rows:
                    # Roll-ups first: on PostgreSQL this statement opens the transaction
                    # that the COPY below joins.
                    await self._many(conn, self._upsert, rollup_rows(rows), ROLLUP_CHUNK)
                    await self._insert(conn, rows)
        except BaseException as err:
            await self.drop()
            if is_data_error(err):
                raise BadRows(str(err)) from err
            raise
        return len(rows)

    async def _new_only(self, conn: AsyncConnection, rows: Sequence[Row]) -> list[Row]:
        unique: dict[str, Row] = {}
        for row in rows:
            unique.setdefault(row[0], row)  # (the id) a spool may hold a record twice
        ids = list(unique)
        for i in range(0, len(ids), DEDUPE_CHUNK):
            chunk = ids[i : i + DEDUPE_CHUNK]
            found = await conn.execute(select(calls.c.id).where(calls.c.id.in_(chunk)))
            for (rid,) in found:
                unique.pop(rid, None)
        return list(unique.values())

    async def _insert(self, conn: AsyncConnection, rows: Sequence[Row]) -> None:
        if self.dialect == "postgresql":
            raw = await conn.get_raw_connection()
            pg: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
            assert pg.is_in_transaction()  # COPY must be part of the batch's transaction
            await pg.copy_records_to_table("calls", records=list(rows), columns=list(COLUMNS))
        else:
            await self._many(conn, self._insert_sql, rows, CALLS_CHUNK)

    async def _many(
        self, conn: AsyncConnection, sql: str, rows: Sequence[tuple[Any, ...]], chunk: int
    ) -> None:
        """Run a one-row INSERT for many rows.

        PostgreSQL: asyncpg's executemany (pipelined, on the event loop). SQLite: one
        multi-row INSERT per ``chunk`` rows. ``executemany`` there steps once per row,
        and the driver's thread takes the GIL back after every step: under load it
        waits on the event loop's thread for each row, and the switching cost the
        router a third of its throughput where one statement costs a tenth.
        """
        if self.dialect == "postgresql":
            await conn.exec_driver_sql(sql, list(rows))
            return
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            values = tuple(v for row in part for v in row)
            await conn.exec_driver_sql(_multi_row(sql, len(part)), values)

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self.engine.connect()
        return self._conn

    async def drop(self) -> None:
        """Forget the connection (after an error, or to close)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:
                pass  # it is broken already: nothing to give back
