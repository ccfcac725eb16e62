"""Alembic migrations of the store (run by :mod:`modelrouter.store.migrate`, not by an ini file)."""
