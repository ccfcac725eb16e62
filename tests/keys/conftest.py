"""Key tests use the store tests' engines: each runs on SQLite and on PostgreSQL."""

from tests.store.conftest import _own_database, empty_store, store_url

__all__ = ["_own_database", "empty_store", "store_url"]
