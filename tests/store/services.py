"""The PostgreSQL the store tests use: 127.0.0.1:5432, trust auth, database ``test``.

Tests that need it skip, saying why, when it does not answer, unless
``MODELROUTER_REQUIRE_SERVICES=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import functools
import os

import asyncpg
import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_USERS = ("root", "postgres")
TEST_DB = f"modelrouter_test_{os.getpid()}"
"""This test process's own database, created on first use and dropped at its end:
test runs on one machine (several checkouts) never see each other's tables. Tables are
dropped between tests; nothing outside this database is touched."""
_PREFIX = "modelrouter_test_"


@functools.cache
def _find_pg() -> tuple[str | None, str]:
    async def probe(user: str) -> None:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=user, database="test", timeout=3
        )
        try:
            names = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", _PREFIX + "%"
            )
            for (name,) in names:
                if not _alive(name.removeprefix(_PREFIX)):
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')  # a run that died
            await conn.execute(f'CREATE DATABASE "{TEST_DB}"')
        finally:
            await conn.close()

    errors = []
    for user in PG_USERS:
        try:
            asyncio.run(probe(user))
        except (OSError, asyncpg.PostgresError, TimeoutError) as err:
            errors.append(f"{user}: {type(err).__name__}: {err}")
            continue
        return f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{TEST_DB}", ""
    return None, "; ".join(errors)


def _alive(pid: str) -> bool:
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


def drop_test_db() -> None:
    """Drop this process's database, if it made one (at the end of the session)."""
    if not _find_pg.cache_info().currsize:
        return
    url, _ = _find_pg()
    if url is None:
        return

    async def drop() -> None:
        conn = await asyncpg.connect(url.rsplit("/", 1)[0] + "/test", timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def require_pg() -> str:
    """The test database's URL; skip (or, in CI, fail) when PostgreSQL does not answer."""
    url, why = _find_pg()
    if url is None:
        reason = f"PostgreSQL at {PG_HOST}:{PG_PORT} does not answer ({why})"
        if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and MODELROUTER_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return url


async def reset_pg(url: str) -> None:
    """Drop the store's tables: every test starts from an empty database."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS calls, usage_rollup, keys, teams, changes, alembic_version "
            "CASCADE"
        )
    finally:
        await conn.close()
