"""How limits look on the wire: the 403 and 429 answers and the ``x-ratelimit-*`` headers.

Shared by every limiter (per process, Redis), so that a client sees the same answer
whichever one counted. The names and formats are OpenAI's:

* ``x-ratelimit-limit-requests`` / ``-tokens``: the per-minute limit;
* ``x-ratelimit-remaining-requests`` / ``-tokens``: what is left now (never below 0);
* ``x-ratelimit-reset-requests`` / ``-tokens``: how long until the limit is back to
  full, as OpenAI writes durations (``"6s"``, ``"1m0s"``, ``"120ms"``).

When a key and its team both limit a kind, the headers describe the stricter of the
two right now: the one with the least remaining.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from modelrouter.errors import RouterError
from modelrouter.governance.types import Scope, ScopeKind

Reason = Literal["rpm", "tpm", "budget", "models"]
"""Why a request was refused: the ``reason`` label of ``modelrouter_limited_total``."""

NEVER = 60.0
"""Retry-After for a limit of 0: nothing will ever pass, but a client must be told a time."""


class LimitExceeded(RouterError):
    """A refusal by a limit or a permission, naming which scope refused and why."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        scope_kind: ScopeKind,
        reason: Reason,
        type: str,
        code: str,
        headers: dict[str, str] | None = None,
        should_retry: bool | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(
            status,
            message,
            type=type,
            code=code,
            headers=headers,
            should_retry=should_retry,
            param=param,
        )
        self.scope_kind: ScopeKind = scope_kind
        self.reason: Reason = reason


def duration(seconds: float) -> str:
    """``seconds`` as OpenAI's rate-limit headers write it (Go's style), to the
    millisecond: ``"120ms"``, ``"6s"``, ``"6.5s"``, ``"1m0s"``, ``"1h2m3s"``."""
    if seconds <= 0:
        return "0s"
    millis = round(seconds * 1000)
    # The usual cases first: this runs twice for every limited answer.
    if millis < 1000:
        return f"{millis}ms" if millis else "0s"
    if millis < 60_000:
        return f"{millis / 1000:g}s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs = f"{millis / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True, slots=True)
class Gauge:
    """One limit's state now: what the headers of its kind report."""

    limit: int
    remaining: float
    reset_s: float
    """Seconds until the limit is back to full."""


REQUESTS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
)
"""The header names of the request limit (rpm): limit, remaining, reset."""
TOKENS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
"""The header names of the token limit (tpm): limit, remaining, reset."""


def put(
    headers: dict[str, str],
    names: tuple[str, str, str],
    limit: str,
    remaining: float,
    reset_s: float,
) -> None:
    """Write one limit's three headers (``names``: :data:`REQUESTS` or :data:`TOKENS`)."""
    headers[names[0]] = limit
    headers[names[1]] = str(int(remaining)) if remaining > 0 else "0"  # int(): floor, ≥ 0
    headers[names[2]] = duration(reset_s)


def put_headers(headers: dict[str, str], kind: str, gauges: Sequence[Gauge]) -> None:
    """Add the three ``x-ratelimit-*-{kind}`` headers of the stricter of ``gauges``."""
    if not gauges:
        return
    g = min(gauges, key=lambda g: g.remaining) if len(gauges) > 1 else gauges[0]
    put(headers, REQUESTS if kind == "requests" else TOKENS, str(g.limit), g.remaining, g.reset_s)


def whose(scope: Scope) -> str:
    """How a message names a scope's limit: ``this key's`` or ``team 'research''s``."""
    return "this key's" if scope.kind == "key" else f"team {scope.id!r}'s"


def rate_limited(
    scope: Scope,
    reason: Literal["rpm", "tpm"],
    retry_after_s: float,
    *,
    limit: int,
    remaining: float,
    requested: int,
    headers: dict[str, str],
) -> LimitExceeded:
    """429 ``rate_limit_exceeded`` with ``Retry-After`` (whole seconds, rounded up)."""
    unit = "requests" if reason == "rpm" else "tokens"
    wait = max(1, math.ceil(retry_after_s)) if limit > 0 else int(NEVER)
    left = max(0, math.floor(remaining))
    message = (
        f"Rate limit reached: {whose(scope)} limit of {limit} {unit} per minute "
        f"({reason}). Remaining {left}, requested {requested}. "
        f"Please try again in {duration(float(wait))}."
    )
    if reason == "tpm" and requested > limit > 0:
        message += (
            f" This request alone (about {requested} tokens, prompt plus max_tokens) is "
            "more than a minute's limit: it waits for a full minute's allowance; a lower "
            "max_tokens asks for less."
        )
    return LimitExceeded(
        429,
        message,
        scope_kind=scope.kind,
        reason=reason,
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={
            **headers,
            "retry-after": str(wait),
            # Read first by the OpenAI and Anthropic SDKs: the exact wait.
            "retry-after-ms": str(max(1000, round(retry_after_s * 1000))),
        },
    )


def quota_spent(
    scope: Scope, spent: float, reserved: float, budget: float, renews_at: float | None
) -> LimitExceeded:
    """429 ``insufficient_quota`` (OpenAI's code for it) with ``x-should-retry: false``."""
    period = scope.limits.budget_period
    per = "in total" if period == "total" else f"per {period}"
    message = (
        f"Budget spent: {whose(scope)} budget is ${budget:.2f} {per}; "
        f"${spent:.4f} is spent and ${reserved:.4f} held by requests still running."
    )
    if renews_at is None:
        message += " It does not renew: an admin can raise it."
    else:
        when = datetime.fromtimestamp(renews_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message += f" It renews at {when}."
    return LimitExceeded(
        429,
        message,
        scope_kind=scope.kind,
        reason="budget",
        type="insufficient_quota",
        code="insufficient_quota",
        should_retry=False,
    )


def model_not_allowed(name: str, allowed: Sequence[str], team: str | None) -> LimitExceeded:
    """403 ``model_not_allowed`` for ``name``, listing what ``allowed`` permits."""
    owner = "this key" if team is None else f"this key or its team {team!r}"
    listed = ", ".join(allowed) if allowed else "nothing"
    return LimitExceeded(
        403,
        f"{name!r} is not allowed for {owner}: the allowed routes and models are {listed}.",
        scope_kind="key",
        reason="models",
        type="permission_error",
        code="model_not_allowed",
        param="model",
    )
