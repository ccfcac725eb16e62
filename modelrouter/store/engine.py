"""Which store a config names, and SQLAlchemy engines for it.

``[store] url`` is ``sqlite:///PATH`` or ``postgresql://...`` (or ``"none"``). The
drivers are async on both sides: aiosqlite for SQLite, asyncpg for PostgreSQL. asyncpg
was chosen by measurement over psycopg 3 (``python -m bench.store drivers``: COPY into
the real ``calls`` table, 40,000 records in batches of 1,000, three rounds): asyncpg
spent 1.46-1.59 us of the client process's CPU per record against psycopg's 2.75-3.50,
at a similar 63,000-85,000 records/s for both. The writer's CPU is what the request
path pays for, so the cheaper client wins.

SQLite runs in WAL mode with a busy timeout, so several worker processes (``serve
--workers N``) and the admin readers share one file; writers take the lock up front
(``BEGIN IMMEDIATE``, :data:`SQLITE_BEGIN`) so two of them never deadlock upgrading a
read lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from modelrouter.settings import StoreSettings

BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite connection waits for another process's write lock."""
SQLITE_BEGIN = "BEGIN IMMEDIATE"
CONNECT_TIMEOUT_S = 5.0


class StoreError(Exception):
    """The store cannot be used as configured (the message says what to do)."""


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A resolved ``[store] url``."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"``."""
    url: URL
    """The SQLAlchemy URL with the async driver (render with :meth:`safe`)."""
    path: Path | None = None
    """The SQLite file."""

    def safe(self) -> str:
        """The URL with its password hidden, for messages."""
        return self.url.render_as_string(hide_password=True)


def resolve(settings: StoreSettings, directory: str | None) -> StoreURL | None:
    """The store a config names; ``None`` for ``url = "none"``.

    A relative SQLite path starts at the config file's directory (``directory``),
    else at the working directory.
    """
    if settings.url == "none":
        return None
    url = make_url(settings.url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = Path(url.database or "").expanduser()
        if not path.is_absolute():
            path = Path(directory or Path.cwd()) / path
        path = path.resolve()
        return StoreURL("sqlite", url.set(drivername="sqlite+aiosqlite", database=str(path)), path)
    return StoreURL("postgresql", url.set(drivername="postgresql+asyncpg"))


def spool_dir(settings: StoreSettings, store: StoreURL, directory: str | None) -> Path:
    """Where records wait while the store cannot take them (see ``[store] spool_dir``)."""
    if settings.spool_dir:
        path = Path(settings.spool_dir).expanduser()
        return path if path.is_absolute() else Path(directory or Path.cwd()) / path
    if store.path is not None:
        return store.path.with_name(store.path.name + ".spool")
    return Path(directory or Path.cwd()) / "modelrouter-spool"


def make_engine(
    store: StoreURL, *, name: str, pool_size: int = 2, writer: bool = False
) -> AsyncEngine:
    """An async engine for ``store``; ``name`` labels its PostgreSQL connections
    (``application_name``: operators, and tests, can tell the writer's apart).

    ``writer``: on SQLite, every transaction takes the write lock when it begins, and
    DDL is transactional too (migrations run on such an engine).
    """
    args: dict[str, Any] = {}
    if store.dialect == "postgresql":
        args = {
            "server_settings": {"application_name": name},
            "timeout": CONNECT_TIMEOUT_S,
            # One writer transaction per batch and few distinct statements: asyncpg's
            # statement cache is all the preparing there is.
            "command_timeout": 60,
        }
        engine = create_async_engine(
            store.url,
            connect_args=args,
            pool_size=pool_size,
            max_overflow=2,
            pool_pre_ping=True,
        )
    else:
        engine = create_async_engine(
            store.url,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=2,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if writer:
            # SQLAlchemy's recipe for SQLite: the driver's own transaction handling off
            # (it begins lazily and never for DDL), our BEGIN IMMEDIATE on begin().
            event.listen(engine.sync_engine, "connect", _sqlite_manual_transactions)
            event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_manual_transactions(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql(SQLITE_BEGIN)


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First: every later statement waits for another process's lock instead of failing.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # WAL: readers never block the writer nor it them, and several processes share
    # the file. synchronous=NORMAL is durable across process crashes (a power cut may
    # lose the last transactions, which the spool does not cover either).
    _set_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL needs it to itself, and SQLite may answer "locked"
    # at once, without its busy handler, while other processes open it at the same
    # moment (workers starting together): try again for up to the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
