"""The call-log record: what one request leaves behind, typed, and its row in ``calls``.

The front door builds one :class:`CallRecord` per request (in
:mod:`modelrouter.recording`); the access log writes it as a JSON line and the call
log's writer turns it into a row (:func:`row_of`, a tuple) off the hot path. The
spool keeps rows keyed by column name (:func:`row_dict`), so a spool replays into a
newer schema too (:func:`row_from`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from modelrouter.errors import Attempt
from modelrouter.store.schema import calls

COLUMNS: tuple[str, ...] = tuple(str(c.name) for c in calls.columns)
"""The columns of ``calls`` in table order (the order of every insert)."""

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


Row = tuple[Any, ...]
"""A ``calls`` row: values in :data:`COLUMNS` order."""
INDEX = {name: i for i, name in enumerate(COLUMNS)}
"""Column name -> position in a :data:`Row`."""


def _fit(value: str | None, limit: int) -> str | None:
    """``value`` cut to ``limit`` and without NUL (which PostgreSQL text cannot hold)."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value if len(value) <= limit else value[:limit]


def _text(value: str | None) -> str | None:
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "")


def row_of(rec: CallRecord) -> Row:
    """The ``calls`` row of a record: time in microseconds, JSON as text, strings cut to
    their column's length (an over-long value must not fail a whole batch).

    A tuple, built in one go: the writer makes one per request, so this is on the
    budget every request pays. JSON text made by orjson needs no NUL check (it escapes
    control characters).
    """
    return (
        rec.id,
        None if rec.request_id == rec.id else _fit(rec.request_id, 128),
        int(rec.ts * 1_000_000),
        rec.surface,
        _fit(rec.endpoint, 200),
        _fit(rec.key_id, 64),
        _fit(rec.key_name, 200),
        _fit(rec.team, 200),
        _fit(rec.route, 400),
        _fit(rec.requested_model, 200),
        _fit(rec.model, 200),
        _fit(rec.provider, 200),
        rec.status,
        _fit(rec.error_code, 64),
        rec.stream,
        rec.latency_ms,
        rec.ttft_ms,
        rec.input_tokens,
        rec.output_tokens,
        rec.cached_tokens,
        rec.cost_usd,
        rec.fallbacks,
        orjson.dumps(list(rec.attempts)).decode(),
        _fit(rec.user, 256),
        orjson.dumps(list(rec.tags)).decode() if rec.tags else None,
        rec.request_body,
        _text(rec.response_body),
        rec.price_unknown,
        rec.usage_estimated,
    )


def row_dict(row: Row) -> dict[str, Any]:
    """A row keyed by column name (the spool's form, and the one read back)."""
    return dict(zip(COLUMNS, row, strict=True))


def row_from(data: Mapping[str, Any]) -> Row:
    """A row from its keyed form; columns an older writer did not have get their default."""
    return tuple(data.get(c, _DEFAULTS.get(c)) for c in COLUMNS)
