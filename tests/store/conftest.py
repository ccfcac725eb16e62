"""Store fixtures: each store test runs on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.helpers import upgrade
from tests.store.services import drop_test_db, require_pg, reset_pg


@pytest.fixture(scope="session", autouse=True)
def _own_database() -> Iterator[None]:
    """Drop this run's PostgreSQL database when the run ends."""
    yield
    drop_test_db()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each engine (no schema yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'calls.db'}"
    url = require_pg()
    asyncio.run(reset_pg(url))
    return url


@pytest.fixture
def store_url(empty_store: str) -> str:
    """The URL of an empty store of each engine, at the current schema."""
    upgrade(empty_store)
    return empty_store
