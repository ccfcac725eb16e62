"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

``calls`` holds one row per request (the call log); ``usage_rollup`` holds per-minute
and per-hour sums per model, route, provider, key and team, which the admin views read
instead of scanning ``calls``. ``keys`` and ``teams`` hold the virtual keys and the
teams made at run time (CONTRACT.md section 5); ``changes`` is the one-row counter
that every write to them bumps, so a router polls one integer to know when to reload.

Choices that hold for both engines:

* Times are integers: ``calls.ts`` and the times of ``keys`` and ``teams`` in
  microseconds since the epoch (UTC), ``usage_rollup.t`` in seconds. One type, one
  ordering and one index on both engines; no time-zone or text-format traps in
  SQLite, and a cursor of ``(ts, id)`` compares exactly.
* ``calls.id`` is the router's own id of the request, unique across processes and
  restarts: the key that makes a record land exactly once. ``request_id`` is the id the
  client sent in ``x-request-id`` (which may repeat, so it cannot be the key), stored
  only when there was one: otherwise the client saw ``id``.
* JSON members (``attempts``, ``tags``, ``models``, ``metadata``) are text: written
  with orjson, portable, and never queried inside.

The migrations in :mod:`modelrouter.store.migrations` build exactly this schema
(a test compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    text,
)

from modelrouter.store import USAGE_GROUPS

metadata = MetaData()
"""Every table of the store."""

calls = Table(
    "calls",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("request_id", String(128)),  # NULL: the same as id
    Column("ts", BigInteger, nullable=False),
    Column("surface", String(8), nullable=False),
    Column("endpoint", String(200), nullable=False),
    Column("key_id", String(64)),
    Column("key_name", String(200)),
    Column("team", String(200)),
    Column("route", String(400)),
    Column("requested_model", String(200)),
    Column("model", String(200)),
    Column("provider", String(200)),
    Column("status", Integer, nullable=False),
    Column("error_code", String(64)),
    Column("stream", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("cost_usd", Float),
    Column("fallbacks", Integer, nullable=False),
    Column("attempts", Text, nullable=False),
    Column("user", String(256)),
    Column("tags", Text),
    Column("request_body", Text),
    Column("response_body", Text),
    # Revision 0002: the cost flags (see modelrouter.recording.cost_of).
    Column("price_unknown", Boolean, nullable=False, server_default=false()),
    Column("usage_estimated", Boolean, nullable=False, server_default=false()),
    # Each index serves one query of GET /admin/logs (newest first, keyset pagination
    # on (ts, id)); every index is paid for by every insert, so there are as few as the
    # queries allow, and partial where most rows need no entry:
    # - ix_calls_ts: the unfiltered list, since/until, and the retention sweep;
    # - (model|route, ts, id): a filter on that column;
    # - (key_id|team, ts, id) WHERE NOT NULL: a filter on a key or team (rows without
    #   one, today all of them, cost no entry);
    # - ix_calls_errors_ts WHERE error_code IS NOT NULL: status=error, and status=CODE
    #   for codes >= 400 (every such record has an error code), so a rare failure is
    #   found without walking the successes; status=200 walks ix_calls_ts;
    # - ix_calls_request_id WHERE NOT NULL: lookup by a client's own x-request-id
    #   (stored only when it differs from id, which the primary key finds).
    Index("ix_calls_ts", "ts", "id"),
    Index("ix_calls_model_ts", "model", "ts", "id"),
    Index("ix_calls_route_ts", "route", "ts", "id"),
    *(
        Index(
            f"ix_calls_{name}_ts",
            column,
            "ts",
            "id",
            sqlite_where=text(f"{column} IS NOT NULL"),
            postgresql_where=text(f"{column} IS NOT NULL"),
        )
        for name, column in (("key", "key_id"), ("team", "team"))
    ),
    Index(
        "ix_calls_errors_ts",
        "ts",
        "id",
        sqlite_where=text("error_code IS NOT NULL"),
        postgresql_where=text("error_code IS NOT NULL"),
    ),
    Index(
        "ix_calls_request_id",
        "request_id",
        sqlite_where=text("request_id IS NOT NULL"),
        postgresql_where=text("request_id IS NOT NULL"),
    ),
)
"""The call log: one row per request through either surface."""

LATENCY_BUCKETS = 41
"""Columns ``lat_00`` .. ``lat_40`` of a roll-up: a latency histogram (see
:mod:`modelrouter.store.rollup` for the bounds)."""

DIMENSIONS = dict(zip(USAGE_GROUPS, ("model", "route", "provider", "key_id", "team"), strict=True))
"""What usage is rolled up by (``dim`` of a roll-up row) and the call column each reads."""
VALUE_LEN = 200
"""Longest dimension value in a roll-up (a longer ad-hoc route list is cut)."""

usage_rollup = Table(
    "usage_rollup",
    metadata,
    Column("bucket_s", Integer, nullable=False),
    Column("t", BigInteger, nullable=False),
    Column("dim", String(16), nullable=False),
    Column("value", String(VALUE_LEN), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("fallbacks", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms_sum", Float, nullable=False),
    *(Column(f"lat_{i:02d}", BigInteger, nullable=False) for i in range(LATENCY_BUCKETS)),
    # GET /admin/usage reads one resolution and one dimension over a time range, grouped
    # by time bucket and value: a range scan of this key, in the order it groups by.
    PrimaryKeyConstraint("bucket_s", "dim", "t", "value", name="pk_usage_rollup"),
)
"""Usage sums per ``bucket_s`` (60: kept two days, for ``interval=1m``; 3600: kept for
good), one row per time bucket and value of each dimension: a request counts once in
each dimension (``""`` when it has no value there, e.g. no model served it).

One row per dimension value rather than per combination: a batch then touches at most
as many roll-up rows as there are distinct models, routes, providers, keys and teams in
it, however many combinations the traffic has (per combination, busy gateways with
many keys write about one roll-up row per request)."""


keys = Table(
    "keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    # The SHA-256 of the secret (hex), never the secret: the secret is shown once.
    Column("key_hash", String(64), nullable=False),
    Column("key_prefix", String(16), nullable=False),
    Column("team", String(200)),
    Column("models", Text),  # JSON list of names and globs; NULL: every model
    Column("rpm", Integer),
    Column("tpm", BigInteger),
    Column("budget_usd", Float),
    Column("budget_period", String(8), nullable=False),
    Column("expires_at", BigInteger),
    Column("metadata", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    # Rotation: the secret before the last rotation stays valid until previous_expires_at.
    Column("previous_hash", String(64)),
    Column("previous_expires_at", BigInteger),
    # Two secrets must never hash alike: a lookup by hash finds one key.
    Index("ux_keys_key_hash", "key_hash", unique=True),
)
"""Virtual keys (one row each, revoked ones kept for the call log's sake)."""

teams = Table(
    "teams",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("models", Text),
    Column("rpm", Integer),
    Column("tpm", BigInteger),
    Column("budget_usd", Float),
    Column("budget_period", String(8), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""Teams made at run time (``[teams.NAME]`` of the config are not stored)."""

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
"""One row (``id`` 1): bumped by every write to ``keys`` or ``teams``, in the same
transaction. Routers poll it (one primary-key read) and reload keys only when it moved;
on PostgreSQL, updating it first also serializes writers, so a check made inside a
write (the team exists, no live key is in a team being deleted) stays true to its end."""
