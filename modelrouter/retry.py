"""Pure functions of the failure table: classify, back off, read Retry-After.

Nothing here does I/O or keeps state, so every rule is table-tested directly.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

from providers.base import Failure

_CONTEXT_MARKERS = (
    b"context_length_exceeded",
    b"maximum context length",
    b"context window",
    b"prompt is too long",
    b"too many tokens",
    b"input is too long",
)

_SERVER_STATUSES = frozenset({408, 409, 500, 502, 503, 504, 529})
_AUTH_STATUSES = frozenset({401, 403, 404})

SAME_MODEL_RETRYABLE = frozenset({Failure.CONNECT, Failure.SERVER})
"""Failures worth one more try on the same model after a backoff."""

RETURN_TO_CLIENT = frozenset({Failure.CLIENT})
"""Failures that end the request: the client's input is at fault, not the model."""


def classify_status(status: int, body: bytes = b"") -> Failure:
    """Map an upstream HTTP error status (and its body) to a failure class."""
    if status == 429:
        return Failure.RATE_LIMIT
    if status in _AUTH_STATUSES:
        return Failure.AUTH
    if status in (400, 413, 422):
        lowered = body[:4096].lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return Failure.CONTEXT_LENGTH
        return Failure.CLIENT
    if status in _SERVER_STATUSES or status >= 500:
        return Failure.SERVER
    # Other 4xx codes (405, 410, 415...) mean this upstream cannot take the call as
    # configured; another model may.
    return Failure.AUTH if 400 <= status < 500 else Failure.MALFORMED


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait according to ``retry-after-ms``, ``retry-after`` or an HTTP date.

    Returns ``None`` when no header is present or none can be read. Negative waits
    become 0.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff(
    retry: int,
    *,
    base: float = 0.5,
    cap: float = 8.0,
    rand: random.Random | None = None,
) -> float:
    """Delay before same-model retry number ``retry`` (1-based).

    Exponential from ``base``, capped at ``cap``, with "equal jitter": the delay is
    between half and all of the exponential value, so retries spread out without
    ever collapsing to zero.
    """
    exp = min(cap, base * (2 ** max(0, retry - 1)))
    r: float = rand.random() if rand is not None else random.random()
    return float(exp / 2 + r * exp / 2)
