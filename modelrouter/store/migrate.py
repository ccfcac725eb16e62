"""Schema migrations (Alembic, configured here rather than by an ini file).

``modelrouter db upgrade`` runs :func:`upgrade`. ``serve`` calls :func:`prepare`: a
SQLite store is upgraded in place (one transaction holding the write lock, so worker
processes starting together upgrade it once); a PostgreSQL store shared by replicas is
never changed by a starting server, which refuses to run on a schema older (or newer)
than its code and names the command that fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.store.engine import StoreError, StoreURL

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 0x6D726462  # "mrdb": PostgreSQL advisory lock held while migrating


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's config for this package's migrations, bound to ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


HEAD: str = ScriptDirectory.from_config(alembic_config()).get_current_head() or ""
"""The revision this code needs."""
REVISIONS: tuple[str, ...] = tuple(
    reversed([s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()])
)
"""Every known revision, oldest first."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a store's schema stands against this code."""

    current: str | None
    """The store's revision (``None``: an empty store)."""

    @property
    def status(self) -> str:
        """``"current"``, ``"behind"`` (an upgrade is due) or ``"ahead"`` (newer code wrote it)."""
        if self.current == HEAD:
            return "current"
        if self.current is None or self.current in REVISIONS:
            return "behind"
        return "ahead"


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection, target: str) -> tuple[str | None, str | None]:
    before = _current(conn)
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
        before = _current(conn)  # another process may have upgraded while we waited
    command.upgrade(alembic_config(conn), target)
    return before, _current(conn)


async def state(engine: AsyncEngine) -> SchemaState:
    """The store's schema revision against :data:`HEAD`."""
    async with engine.connect() as conn:
        return SchemaState(await conn.run_sync(_current))


async def upgrade(engine: AsyncEngine, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``target`` in one transaction; return the revisions before and after.

    ``engine`` must be a writer engine (:func:`~modelrouter.store.engine.make_engine`
    with ``writer=True``) for SQLite's DDL to be transactional.
    """
    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade, target)


def behind_message(store: StoreURL, current: str | None) -> str:
    """What a server says when it will not run on an older schema."""
    at = f"revision {current}" if current else "empty"
    return (
        f"the store's schema ({store.safe()}) is {at}; this modelrouter needs revision "
        f"{HEAD}: run `modelrouter db upgrade` (with the same --config) first"
    )


async def prepare(store: StoreURL, engine: AsyncEngine) -> None:
    """Make the store usable by ``serve``, or raise :class:`StoreError` saying why not."""
    if store.dialect == "sqlite":
        current = await state(engine)
        if current.status == "behind":
            await upgrade(engine)
            current = await state(engine)
    else:
        current = await state(engine)
    if current.status == "behind":
        raise StoreError(behind_message(store, current.current))
    if current.status == "ahead":
        raise StoreError(
            f"the store's schema ({store.safe()}) is at revision {current.current}, newer "
            f"than this modelrouter knows (up to {HEAD}): upgrade modelrouter"
        )
