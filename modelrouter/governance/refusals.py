"""How a limiter says no, and the ``x-ratelimit-*`` headers it says yes with.

Shared by every :class:`~modelrouter.governance.types.Limiter` so that a request
refused by the per-process limiter and one refused through Redis read the same
(CONTRACT.md section 5): 429 ``rate_limit_exceeded`` with ``Retry-After`` for rpm and
tpm, 429 ``insufficient_quota`` with ``x-should-retry: false`` for a spent budget.
"""

from __future__ import annotations

import math
from typing import Literal

from modelrouter.errors import RouterError
from modelrouter.governance.types import Period, Scope

RateKind = Literal["rpm", "tpm"]

_WHAT = {"rpm": "requests per minute", "tpm": "tokens per minute"}
_PERIOD = {"day": "today", "week": "this week", "month": "this month", "total": "in total"}


def retry_after_s(wait_s: float) -> int:
    """Whole seconds a client should wait: rounded up, at least 1."""
    return max(1, math.ceil(wait_s - 1e-9))


def rate_limited(scope: Scope, kind: RateKind, limit: int, wait_s: float) -> RouterError:
    """429 ``rate_limit_exceeded``: ``scope`` has no room for this request in ``kind``."""
    after = retry_after_s(wait_s)
    return RouterError(
        429,
        f"Rate limit reached for {scope.kind} {scope.id!r}: {limit} {_WHAT[kind]} ({kind}). "
        f"Try again in {after} s.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"retry-after": str(after)},
    )


def over_budget(scope: Scope, spent_usd: float, budget_usd: float, period: Period) -> RouterError:
    """429 ``insufficient_quota``: the request's cost would take ``scope`` past its
    budget (spent plus what requests in flight reserved); retrying will not help."""
    return RouterError(
        429,
        f"Budget of {scope.kind} {scope.id!r} is spent {_PERIOD[period]}: "
        f"${spent_usd:.4f} used or reserved of ${budget_usd:.4f}.",
        type="insufficient_quota",
        code="insufficient_quota",
        should_retry=False,
    )


def limiter_unavailable() -> RouterError:
    """503 while shared counters are unreachable and ``cluster.on_redis_error = "deny"``."""
    return RouterError(
        503,
        "Rate limits and budgets are shared through Redis, which is not answering; "
        'with cluster.on_redis_error = "deny" limited keys are refused until it is back.',
        type="api_error",
        code="limiter_unavailable",
        headers={"retry-after": "1"},
    )


def reset_text(seconds: float) -> str:
    """A wait in OpenAI's ``x-ratelimit-reset-*`` form (Go durations): ``20ms``,
    ``6s``, ``1.5s``, ``1m0s``, ``1h2m3s``."""
    ms = max(0, round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


def rate_headers(
    requests: tuple[int, int, float] | None, tokens: tuple[int, int, float] | None
) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers from (limit, remaining, seconds until full) of the
    stricter scope for requests and for tokens; ``None`` = that kind is not limited."""
    out: dict[str, str] = {}
    for name, trio in (("requests", requests), ("tokens", tokens)):
        if trio is None:
            continue
        limit, remaining, reset_s = trio
        out[f"x-ratelimit-limit-{name}"] = str(limit)
        out[f"x-ratelimit-remaining-{name}"] = str(max(0, remaining))
        out[f"x-ratelimit-reset-{name}"] = reset_text(reset_s)
    return out
