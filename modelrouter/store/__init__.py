"""The store: the call log, usage roll-ups (and later keys and teams) in SQLite or PostgreSQL.

Modules: :mod:`~modelrouter.store.schema` (tables), :mod:`~modelrouter.store.migrate`
(Alembic), :mod:`~modelrouter.store.engine` (URLs, engines), the write side
(:mod:`~modelrouter.store.calllog`, :mod:`~modelrouter.store.writer`,
:mod:`~modelrouter.store.sink`, :mod:`~modelrouter.store.spool`,
:mod:`~modelrouter.store.rollup`, :mod:`~modelrouter.store.retention`) and the read
side (:mod:`~modelrouter.store.queries`, :mod:`~modelrouter.store.timespec`).
"""

USAGE_INTERVALS = {"1m": 60, "1h": 3600, "1d": 86400}
"""``interval`` values of a usage query and their seconds."""
USAGE_GROUPS = ("model", "route", "provider", "key", "team")
"""``group_by`` values of a usage query: the dimensions usage is rolled up by."""
