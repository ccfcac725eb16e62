"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

``calls`` holds one row per request (the call log); ``usage_rollup`` holds per-minute
and per-hour sums per model, route, provider, key and team, which the admin views read
instead of scanning ``calls``. The keys and
teams of the gateway (CONTRACT.md section 5) will get tables of their own; the call
log already has their columns (``key_id``, ``key_name``, ``team``), empty until then.

Choices that hold for both engines:

* Times are integers: ``calls.ts`` in microseconds since the epoch (UTC),
  ``usage_rollup.t`` in seconds. One type, one ordering and one index on both
  engines; no time-zone or text-format traps in SQLite, and a cursor of ``(ts, id)``
  compares exactly.
* ``calls.id`` is the router's own id of the request, unique across processes and
  restarts: the key that makes a record land exactly once. ``request_id`` is the id the
  client saw in ``x-request-id``: the router's own, or one the client sent (which may
  repeat, so it cannot be the key).
* JSON members (``attempts``, ``tags``) are text: written by the writer with orjson,
  portable, and never queried inside.

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
    Column("request_id", String(128), nullable=False),
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
    # on (ts, id)): the unfiltered list and the retention sweep use ix_calls_ts, a
    # filter on one column uses that column's (col, ts, id) index, and status=error
    # uses a partial index holding only failed requests, so a rare error is found
    # without walking the successes. A lookup by request id has its own index.
    Index("ix_calls_ts", "ts", "id"),
    Index("ix_calls_request_id", "request_id"),
    Index("ix_calls_model_ts", "model", "ts", "id"),
    Index("ix_calls_route_ts", "route", "ts", "id"),
    Index("ix_calls_key_ts", "key_id", "ts", "id"),
    Index("ix_calls_team_ts", "team", "ts", "id"),
    Index("ix_calls_status_ts", "status", "ts", "id"),
    Index(
        "ix_calls_errors_ts",
        "ts",
        "id",
        sqlite_where=text("error_code IS NOT NULL"),
        postgresql_where=text("error_code IS NOT NULL"),
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
