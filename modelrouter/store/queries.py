"""The read side: call-log pages, one record, and usage series from the roll-ups.

``GET /admin/logs`` and ``modelrouter logs`` page through ``calls`` newest first by
keyset pagination on ``(ts, id)``: each page is an index range scan (see the indexes
in :mod:`modelrouter.store.schema`), however deep, and a record written while a client
pages never shows up twice or pushes another off a page.

``GET /admin/usage`` and ``modelrouter usage`` never read ``calls``: ``1h`` and ``1d``
points come from the hourly roll-ups (kept for good), ``1m`` points from the
per-minute ones (kept two days, so ``1m`` serves windows that start within them).
Points are whole buckets (``since`` is rounded down to the interval) and only buckets
with requests are listed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.store import USAGE_GROUPS, USAGE_INTERVALS
from modelrouter.store.rollup import HIST, HOUR, MINUTE, MINUTE_KEEP_S, SUMS, percentiles
from modelrouter.store.schema import calls, usage_rollup
from modelrouter.store.timespec import iso

MAX_LIMIT = 1000
INTERVALS = USAGE_INTERVALS
MAX_POINTS = 5000
"""Most buckets one series may span (``1m`` over more than three days is refused)."""

BODIES = ("request_body", "response_body")
_LIST_COLUMNS = [c for c in calls.columns if c.name not in BODIES]


class QueryError(ValueError):
    """A query the store cannot answer as asked; ``param`` names the culprit."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What ``/admin/logs`` may filter on (``None``: no filter)."""

    since: float | None = None
    until: float | None = None
    model: str | None = None
    route: str | None = None
    key: str | None = None
    team: str | None = None
    status: str | None = None
    """An HTTP status code, or ``"error"``: every request that did not end in a full answer."""

    def clauses(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses (each served by an index; see the schema)."""
        c = calls.c
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(c.ts >= int(self.since * 1_000_000))
        if self.until is not None:
            out.append(c.ts < int(self.until * 1_000_000))
        for column, value in (
            (c.model, self.model),
            (c.route, self.route),
            (c.key_id, self.key),
            (c.team, self.team),
        ):
            if value is not None:
                out.append(column == value)
        if self.status == "error":
            out.append(c.error_code.is_not(None))
        elif self.status is not None:
            if not self.status.isdigit() or len(self.status) != 3:
                raise QueryError("'status' must be an HTTP status code or 'error'.", "status")
            out.append(c.status == int(self.status))
            if int(self.status) >= 400:
                # True of every such record: lets the errors index serve the query.
                out.append(c.error_code.is_not(None))
        return out


def encode_cursor(ts: int, rid: str) -> str:
    """The opaque cursor that continues after the record ``(ts, id)``."""
    return base64.urlsafe_b64encode(f"{ts}:{rid}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """``(ts, id)`` of a cursor from :func:`encode_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, rid = raw.split(":", 1)
        return int(ts), rid
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError("'cursor' is not a cursor this API returned.", "cursor") from None


def record_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``calls`` row as the API shows it: ISO time, JSON members decoded, no empty bodies."""
    out = {str(k): v for k, v in row.items()}  # SQLAlchemy's quoted_name keys: plain str
    out["request_id"] = row["request_id"] or row["id"]
    out["ts"] = iso(row["ts"] / 1_000_000)
    out["stream"] = bool(row["stream"])
    out["attempts"] = orjson.loads(row["attempts"])
    out["tags"] = orjson.loads(row["tags"]) if row["tags"] else []
    for name in ("price_unknown", "usage_estimated"):
        out[name] = bool(row[name])
    for name in BODIES:
        if name in out and out[name] is None:
            del out[name]
    return out


def logs_statement(filt: LogFilter, limit: int, cursor: str | None = None) -> Select[Any]:
    """The SELECT of one page: ``limit + 1`` rows, so the caller knows if more follow."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"'limit' must be between 1 and {MAX_LIMIT}.", "limit")
    clauses = filt.clauses()
    if cursor:
        ts, rid = decode_cursor(cursor)
        clauses.append(tuple_(calls.c.ts, calls.c.id) < tuple_(ts, rid))
    return (
        select(*_LIST_COLUMNS)
        .where(*clauses)
        .order_by(calls.c.ts.desc(), calls.c.id.desc())
        .limit(limit + 1)
    )


async def list_logs(
    engine: AsyncEngine, filt: LogFilter, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of records, newest first, and the cursor of the next page (or ``None``)."""
    stmt = logs_statement(filt, limit, cursor)
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    after = encode_cursor(rows[-1]["ts"], rows[-1]["id"]) if more else None
    return [record_json(r) for r in rows], after


async def get_log(engine: AsyncEngine, request_id: str) -> dict[str, Any] | None:
    """The record with this id, else the newest with this client request id; bodies
    included."""
    async with engine.connect() as conn:
        for column in (calls.c.id, calls.c.request_id):
            stmt = select(calls).where(column == request_id).order_by(calls.c.ts.desc()).limit(1)
            row = (await conn.execute(stmt)).first()
            if row is not None:
                return record_json(dict(row._mapping))
    return None


_N = len(SUMS)
_REQUESTS, _ERRORS, _FALLBACKS, _IN, _OUT, _CACHED, _COST = range(7)


def _point(values: Sequence[Any]) -> dict[str, Any]:
    """One point (or total) from summed roll-up columns (:data:`SUMS`, then the histogram)."""
    p50, p95 = percentiles(values[_N:], (0.5, 0.95))
    return {
        "requests": values[_REQUESTS],
        "errors": values[_ERRORS],
        "fallbacks": values[_FALLBACKS],
        "input_tokens": values[_IN],
        "output_tokens": values[_OUT],
        "cached_tokens": values[_CACHED],
        "cost_usd": float(values[_COST]),
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
    }


def _sum_column(name: str) -> Any:
    # PostgreSQL sums bigint into numeric (Decimal in Python): back to integers.
    total = func.sum(usage_rollup.c[name])
    return total if name in ("cost_usd", "latency_ms_sum") else cast(total, BigInteger)


async def usage(
    engine: AsyncEngine,
    *,
    since: float,
    until: float,
    now: float,
    interval: str = "1h",
    group_by: str = "model",
) -> dict[str, Any]:
    """Usage series per group between ``since`` and ``until`` (epoch seconds)."""
    step = INTERVALS.get(interval)
    if step is None:
        raise QueryError("'interval' must be one of 1m, 1h, 1d.", "interval")
    if group_by not in USAGE_GROUPS:
        raise QueryError("'group_by' must be one of model, route, provider, key, team.", "group_by")
    if until <= since:
        raise QueryError("'until' must be later than 'since'.", "until")
    span = MINUTE if step == MINUTE else HOUR
    if span == MINUTE and since < now - MINUTE_KEEP_S:
        raise QueryError("interval=1m covers the last 2 days only: use 1h further back.", "since")
    start = int(since) - int(since) % step
    if (until - start) / step > MAX_POINTS:
        raise QueryError(f"Too many points (over {MAX_POINTS}): use a longer interval.", "interval")
    u = usage_rollup.c
    where = (u.bucket_s == span, u.dim == group_by, u.t >= start, u.t < int(until))
    if step == span:
        # One roll-up row per (time bucket, value) already: no grouping to do.
        stmt = select(u.t, u.value, *(u[c] for c in SUMS + HIST)).where(*where)
        stmt = stmt.order_by(u.t, u.value)
    else:
        bucket = (u.t - u.t % step).label("bucket")
        stmt = select(bucket, u.value, *(_sum_column(c) for c in SUMS + HIST)).where(*where)
        stmt = stmt.group_by(bucket, u.value).order_by(bucket, u.value)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    series: dict[str, dict[str, Any]] = {}
    columns: dict[str, list[Sequence[Any]]] = {}
    t_text = ""
    last_t = None
    for t, name, *values in rows:
        if t != last_t:
            t_text, last_t = iso(t), t  # rows come time bucket by time bucket
        entry = series.get(name)
        if entry is None:
            entry = series[name] = {"group": name or None, "points": []}
            columns[name] = []
        entry["points"].append({"t": t_text, **_point(values)})
        columns[name].append(values)
    out = []
    grand: list[Sequence[Any]] = []
    for name in sorted(series):
        # Column sums over a group's points, and over every group's: sum() in C.
        sums = [sum(column) for column in zip(*columns[name], strict=True)]
        series[name]["totals"] = _point(sums)
        grand.append(sums)
        out.append(series[name])
    totals = [sum(column) for column in zip(*grand, strict=True)] if grand else None
    return {
        "interval": interval,
        "group_by": group_by,
        "since": iso(start),
        "until": iso(until),
        "series": out,
        "totals": _point(totals or [0] * (len(SUMS) + len(HIST))),
    }
