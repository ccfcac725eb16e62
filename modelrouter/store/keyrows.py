"""The rows of ``keys``, ``teams`` and ``changes``: reads and writes, nothing more.

Validation and meaning live in :mod:`modelrouter.governance.keystore`; this module
only speaks SQL (Core statements, the same on SQLite and PostgreSQL). Every write
function takes the connection of a transaction its caller opened, and bumps the
change counter inside it (:func:`bump`), so a write and the signal that something
changed commit together or not at all.

Rows come back as plain dicts keyed by column name, times in microseconds since the
epoch as stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelrouter.store.schema import changes, keys, teams

Row = dict[str, Any]
"""One row, by column name."""


def _plain(row: Any) -> Row:
    return {str(k): v for k, v in row._mapping.items()}


async def bump(conn: AsyncConnection) -> None:
    """Count one change. Called first in every write transaction: on PostgreSQL the row
    lock it takes makes writers of keys and teams run one at a time."""
    await conn.execute(
        update(changes).where(changes.c.id == 1).values(version=changes.c.version + 1)
    )


async def version(conn: AsyncConnection) -> int:
    """The change counter (one primary-key read)."""
    found = (await conn.execute(select(changes.c.version).where(changes.c.id == 1))).scalar()
    return int(found or 0)


async def snapshot(engine: AsyncEngine) -> tuple[int, list[Row], list[Row]]:
    """The counter, then every key and team. The counter is read first: a write that
    lands in between makes the next poll see a newer counter and load again."""
    async with engine.connect() as conn:
        seen = await version(conn)
        key_rows = [_plain(r) for r in await conn.execute(select(keys).order_by(keys.c.created_at))]
        team_rows = [_plain(r) for r in await conn.execute(select(teams).order_by(teams.c.name))]
    return seen, key_rows, team_rows


async def get_key(conn: AsyncConnection, key_id: str) -> Row | None:
    """One key by id."""
    row = (await conn.execute(select(keys).where(keys.c.id == key_id))).first()
    return None if row is None else _plain(row)


async def list_keys(conn: AsyncConnection) -> list[Row]:
    """Every key, oldest first."""
    result = await conn.execute(select(keys).order_by(keys.c.created_at, keys.c.id))
    return [_plain(r) for r in result]


async def insert_key(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Add a key (``values`` holds every column)."""
    await conn.execute(insert(keys).values(**values))


async def update_key(conn: AsyncConnection, key_id: str, values: Mapping[str, Any]) -> None:
    """Change some columns of one key."""
    await conn.execute(update(keys).where(keys.c.id == key_id).values(**values))


async def get_team(conn: AsyncConnection, name: str) -> Row | None:
    """One run-time team by name."""
    row = (await conn.execute(select(teams).where(teams.c.name == name))).first()
    return None if row is None else _plain(row)


async def list_teams(conn: AsyncConnection) -> list[Row]:
    """Every run-time team, by name."""
    return [_plain(r) for r in await conn.execute(select(teams).order_by(teams.c.name))]


async def insert_team(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Add a team."""
    await conn.execute(insert(teams).values(**values))


async def update_team(conn: AsyncConnection, name: str, values: Mapping[str, Any]) -> None:
    """Change some columns of one team."""
    await conn.execute(update(teams).where(teams.c.name == name).values(**values))


async def delete_team(conn: AsyncConnection, name: str) -> None:
    """Remove a team."""
    await conn.execute(teams.delete().where(teams.c.name == name))


async def live_keys_in(conn: AsyncConnection, team: str) -> int:
    """How many keys of ``team`` are not revoked."""
    stmt = select(func.count()).where(keys.c.team == team, keys.c.revoked_at.is_(None))
    return int((await conn.execute(stmt)).scalar_one())


async def mark_used(conn: AsyncConnection, used: Iterable[tuple[str, int]]) -> None:
    """Set ``last_used_at`` of keys ``(id, microseconds)`` unless already later (another
    worker may have flushed a newer time). No change is counted: nothing a router
    caches depends on it."""
    stmt = (
        update(keys)
        .where(keys.c.id == bindparam("key_id"))
        .where(or_(keys.c.last_used_at.is_(None), keys.c.last_used_at < bindparam("t")))
        .values(last_used_at=bindparam("t"))
    )
    rows = [{"key_id": key_id, "t": t} for key_id, t in used]
    if rows:
        await conn.execute(stmt, rows)
