"""Alembic's environment: migrations run on the connection that
:mod:`modelrouter.store.migrate` passes in."""

from __future__ import annotations

from alembic import context

from modelrouter.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
