"""Cluster fixtures: the PostgreSQL test database (shared with the store tests) is
dropped when the run ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.services import drop_test_db


@pytest.fixture(scope="session", autouse=True)
def _own_database() -> Iterator[None]:
    """Drop this run's PostgreSQL database (if a test made one) when the run ends."""
    yield
    drop_test_db()
