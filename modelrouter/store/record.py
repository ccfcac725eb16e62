"""The call-log record: what one request leaves behind, typed, and its row in ``calls``.

The front door builds one :class:`CallRecord` per request (in
:mod:`modelrouter.recording`); the access log writes it as a JSON line and the call
log's writer turns it into a row (:func:`row_of`) off the hot path. Rows are plain
dicts keyed by column name, so the spool (JSON lines of rows) replays into a newer
schema too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import String

from modelrouter.errors import Attempt
from modelrouter.store.schema import calls

COLUMNS: tuple[str, ...] = tuple(c.name for c in calls.columns)
"""The columns of ``calls`` in table order (the order of every insert)."""

_LIMITS: dict[str, int] = {
    c.name: c.type.length
    for c in calls.columns
    if isinstance(c.type, String) and c.type.length is not None
}
_DEFAULTS: dict[str, Any] = {"price_unknown": False, "usage_estimated": False}


@dataclass(slots=True)
class CallRecord:
    """One request through either surface, as the call log keeps it (CONTRACT.md §6)."""

    id: str
    """The router's own id of this request: unique, the record's key in the store."""
    request_id: str
    """The id the client saw (``x-request-id``): ``id``, or the one the client sent."""
    ts: float
    """Wall-clock time the request ended (its answer complete, or refused), epoch seconds."""
    surface: str
    """``"http"`` or ``"mcp"``."""
    endpoint: str
    """The HTTP path (``/v1/chat/completions``, ``/v1/prompts/NAME``) or the MCP tool."""
    route: str | None
    """What the request was routed as: a route, a model, or an ad-hoc list ``a,b``."""
    requested_model: str | None
    """The ``model`` the request named, as given."""
    model: str | None
    """The configured model that served it (``None`` if none did)."""
    provider: str | None
    status: int
    """The HTTP status answered (499: the client left a stream)."""
    error_code: str | None
    """Set whenever the request did not end in a complete answer."""
    stream: bool
    latency_ms: float
    """From the request's arrival to its end (a stream's last event)."""
    ttft_ms: float | None
    """Streams: from the request's arrival to the first event sent."""
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    cost_usd: float | None
    price_unknown: bool
    """The served model has no price: ``cost_usd`` is 0 and should not be trusted."""
    usage_estimated: bool
    """The token counts are the router's estimate, not the upstream's report."""
    fallbacks: int
    """Attempts beyond the first (skipped models not counted)."""
    attempts: Sequence[Attempt]
    user: str | None
    """The request's ``user`` field."""
    tags: Sequence[str]
    """From the ``x-modelrouter-tags: a,b`` header."""
    key_id: str | None = None
    """The virtual key's id (keys come with the gateway's identity work; none yet)."""
    key_name: str | None = None
    team: str | None = None
    request_body: str | None = None
    """The messages as JSON text; only with ``server.log_bodies``."""
    response_body: str | None = None
    """The answer; only with ``server.log_bodies``."""


def _clean(value: Any, limit: int | None) -> Any:
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    return value[:limit] if limit is not None else value


def row_of(rec: CallRecord) -> dict[str, Any]:
    """The ``calls`` row of a record: times in microseconds, JSON as text, strings cut
    to their column's length (an over-long value must not fail a whole batch)."""
    row: dict[str, Any] = {
        "id": rec.id,
        "request_id": rec.request_id,
        "ts": int(rec.ts * 1_000_000),
        "surface": rec.surface,
        "endpoint": rec.endpoint,
        "key_id": rec.key_id,
        "key_name": rec.key_name,
        "team": rec.team,
        "route": rec.route,
        "requested_model": rec.requested_model,
        "model": rec.model,
        "provider": rec.provider,
        "status": rec.status,
        "error_code": rec.error_code,
        "stream": rec.stream,
        "latency_ms": rec.latency_ms,
        "ttft_ms": rec.ttft_ms,
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cached_tokens": rec.cached_tokens,
        "cost_usd": rec.cost_usd,
        "price_unknown": rec.price_unknown,
        "usage_estimated": rec.usage_estimated,
        "fallbacks": rec.fallbacks,
        "attempts": orjson.dumps([trail_entry(a) for a in rec.attempts]).decode(),
        "user": rec.user,
        "tags": orjson.dumps(list(rec.tags)).decode() if rec.tags else None,
        "request_body": rec.request_body,
        "response_body": rec.response_body,
    }
    for name, limit in _LIMITS.items():
        row[name] = _clean(row[name], limit)
    for name in ("user", "request_body", "response_body", "attempts", "tags"):
        row[name] = _clean(row[name], None)
    return row


def trail_entry(a: Attempt) -> dict[str, Any]:
    """One attempt as the call log keeps it (its error text is already redacted)."""
    return {
        "model": a.model,
        "provider": a.provider,
        "outcome": a.outcome,
        "status": a.status,
        "duration_ms": round(a.duration_ms, 3),
        "error": a.error,
    }


def complete_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row read back from the spool with every column (older writers had fewer)."""
    return {c: row.get(c, _DEFAULTS.get(c)) for c in COLUMNS}


def row_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row's values in :data:`COLUMNS` order."""
    return tuple(row[c] for c in COLUMNS)
