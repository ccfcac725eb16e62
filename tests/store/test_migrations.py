"""Schema migrations on SQLite and PostgreSQL: from an empty store, from the previous
revision, and what a starting server does with a store that is behind or ahead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from modelrouter.settings import StoreSettings
from modelrouter.store import migrate
from modelrouter.store.calllog import CallLog
from modelrouter.store.engine import StoreError, make_engine, resolve
from modelrouter.store.schema import metadata
from tests.store.helpers import sql, upgrade


def _diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


def schema_diff(url: str) -> list[Any]:
    async def run() -> list[Any]:
        store = resolve(StoreSettings(url=url), None)
        assert store is not None
        engine = make_engine(store, name="test-compare")
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_diff)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_from_empty_builds_exactly_the_schema(empty_store: str) -> None:
    assert upgrade(empty_store) == (None, migrate.HEAD)
    assert schema_diff(empty_store) == []
    assert upgrade(empty_store) == (migrate.HEAD, migrate.HEAD)  # a second run changes nothing


def test_upgrade_from_the_previous_revision_keeps_rows(empty_store: str) -> None:
    assert migrate.REVISIONS == ("0001", "0002", migrate.HEAD)
    assert upgrade(empty_store, "0001") == (None, "0001")
    sql(
        empty_store,
        "INSERT INTO calls (id, request_id, ts, surface, endpoint, status, stream, latency_ms,"
        " fallbacks, attempts) VALUES ('r1', 'r1', 1, 'http', '/v1/chat/completions', 200,"
        " :no, 1.5, 0, '[]')",
        no=False,
    )
    assert upgrade(empty_store) == ("0001", migrate.HEAD)
    rows = sql(empty_store, "SELECT id, latency_ms, price_unknown, usage_estimated FROM calls")
    assert [(r["id"], r["latency_ms"], bool(r["price_unknown"])) for r in rows] == [
        ("r1", 1.5, False)
    ]
    assert not rows[0]["usage_estimated"]
    assert schema_diff(empty_store) == []
    # Revision 0003's change counter starts with its one row.
    assert sql(empty_store, "SELECT id, version FROM changes") == [{"id": 1, "version": 0}]


def _start(url: str) -> CallLog:
    calls = CallLog(StoreSettings(url=url), None)

    async def run() -> None:
        await calls.start()
        await calls.aclose()

    asyncio.run(run())
    return calls


def test_a_starting_server_upgrades_sqlite_but_refuses_old_postgres(empty_store: str) -> None:
    upgrade(empty_store, "0001")
    if empty_store.startswith("sqlite"):
        _start(empty_store)
        assert sql(empty_store, "SELECT version_num FROM alembic_version") == [
            {"version_num": migrate.HEAD}
        ]
        return
    with pytest.raises(StoreError) as err:
        _start(empty_store)
    assert "revision 0001" in str(err.value)
    assert f"needs revision {migrate.HEAD}: run `modelrouter db upgrade`" in str(err.value)
    assert sql(empty_store, "SELECT version_num FROM alembic_version") == [{"version_num": "0001"}]


def test_a_schema_newer_than_the_code_is_refused(store_url: str) -> None:
    sql(store_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer than this modelrouter knows"):
        _start(store_url)


def test_processes_starting_together_upgrade_a_sqlite_store_once(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    store = resolve(StoreSettings(url=url), None)
    assert store is not None

    async def run() -> list[tuple[str | None, str | None]]:
        engines = [make_engine(store, name=f"w{i}", writer=True) for i in range(3)]
        try:
            return await asyncio.gather(*(migrate.upgrade(e) for e in engines))
        finally:
            for e in engines:
                await e.dispose()

    results = asyncio.run(run())
    # One upgraded the empty file; the others waited for its lock and found it done.
    assert sorted(results, key=str) == sorted(
        [(None, migrate.HEAD), (migrate.HEAD, migrate.HEAD), (migrate.HEAD, migrate.HEAD)],
        key=str,
    )
    assert schema_diff(url) == []
