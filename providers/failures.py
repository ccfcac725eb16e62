"""The failure vocabulary every provider speaks, and the one mapping from HTTP to it.

A provider reports every failed call as a :class:`ProviderError` carrying a
:class:`Failure`; what the router then does with each kind (retry the same model,
try the next, hold it against the model's health, hand it to the client) is a table
in :mod:`modelrouter.policy`, not here. As httpx keeps its error mapping in one
place, the mapping from an upstream's status and headers to a failure lives only in
:func:`classify_status` and :func:`parse_retry_after`; vendors refine it, never
replace it.
"""

from __future__ import annotations

import email.utils
import enum
import math
import time
from collections.abc import Mapping


class Failure(enum.Enum):
    """Why an upstream call failed; the router's failure policy is keyed on this."""

    CONNECT = "connect"
    """No byte of an answer came back: refused, reset, DNS failure, closed unanswered."""
    INTERRUPTED = "interrupted"
    """The answer had begun but broke off before its end (the upstream got the request)."""
    TIMEOUT = "timeout"
    """Connect, first-token or idle timeout."""
    SERVER = "server"
    """408, 409, 5xx, 529: transient trouble on the upstream's side."""
    RATE_LIMIT = "rate_limit"
    """429: the upstream asks us to slow down, maybe with a Retry-After."""
    MISCONFIGURED = "misconfigured"
    """This upstream cannot take the call as configured: a wrong key (401/403), a wrong
    model id or path (404, model not pulled), a method or type it refuses (405/410/415),
    a redirect (3xx: the base URL is not the API's)."""
    CLIENT = "client"
    """400, 413, 422 blaming the request: returned to the client as given."""
    CONTEXT_LENGTH = "context_length"
    """The prompt does not fit this model; a bigger model may take it."""
    MALFORMED = "malformed"
    """The upstream answered something that is not a valid completion."""
    CONTENT_FILTER = "content_filter"
    """The upstream refused the content; another vendor may answer."""
    STREAM_CUT = "stream_cut"
    """A stream broke after its first chunk reached the client."""


class ProviderError(Exception):
    """An upstream call failed.

    ``message`` should not contain a secret, and the router redacts every configured
    secret from it (and from ``body``) before the text is kept or shown anywhere.
    ``body`` is the upstream's error body, kept so that a client error can be returned
    to the caller as the upstream gave it.
    """

    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.body = body


_CONTEXT_MARKERS = (
    b"context_length_exceeded",
    b"maximum context length",
    b"context window",
    b"prompt is too long",
    b"too many tokens",
    b"input is too long",
)
_SERVER_STATUSES = frozenset({408, 409, 500, 502, 503, 504, 529})
_CLIENT_STATUSES = frozenset({400, 413, 422})
RETRY_AFTER_STATUSES = frozenset({429, 503, 529})
"""Statuses whose Retry-After header is read."""


def classify_status(status: int, body: bytes = b"") -> Failure:
    """Map an upstream's non-2xx HTTP status (and its body) to a failure class."""
    if status == 429:
        return Failure.RATE_LIMIT
    if status in _CLIENT_STATUSES:
        lowered = body[:4096].lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return Failure.CONTEXT_LENGTH
        return Failure.CLIENT
    if status == 508:
        # Loop Detected: a router answered that this request came back to it. Trying
        # again cannot help; the base URL points at a router that points back.
        return Failure.MISCONFIGURED
    if status in _SERVER_STATUSES or status >= 500:
        return Failure.SERVER
    if 300 <= status < 500:
        # 3xx: the base URL points somewhere that is not the API (we never follow a
        # redirect with a prompt in it). Other 4xx (401, 403, 404, 405, 410, 415 ...):
        # this upstream cannot take the call as configured; another model may.
        return Failure.MISCONFIGURED
    # 1xx never reaches here (the client skips interim answers); anything else
    # (a status line of 600+ or below 100) is not HTTP we understand.
    return Failure.MALFORMED


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms``, ``retry-after`` or an HTTP date.

    Returns ``None`` when no header is present or none can be read (``inf`` and
    ``nan`` cannot: an upstream does not get to silence a model forever). Negative
    waits become 0.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        ms = _seconds(raw_ms)
        if ms is not None:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _seconds(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None
