"""The attempt trail, and the errors built from it when a request cannot be served.

Every try of every model becomes an :class:`Attempt`; a request that no candidate
served ends in a :class:`RouterError` carrying the whole trail (and the ranking notes
that say why some models went last), so a client can see what happened without the
router's logs.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from modelrouter.errors import Attempt, RouterError
from modelrouter.registry import ModelEntry, Plan
from providers.base import Failure, ProviderError
from providers.sse import sse_event

__all__ = [
    "LOOP_DETECTED",
    "Attempt",
    "Observer",
    "client_error",
    "exhausted",
    "internal_error",
    "loop_detected",
    "retry_after_header",
    "skipped_attempts",
    "stream_error_event",
    "stream_failure",
]


class Observer(Protocol):
    """Hears about attempts as they happen (MCP progress notifications)."""

    async def attempt_started(self, model: str, number: int) -> None:
        """An attempt on ``model`` is about to start."""

    async def attempt_failed(self, attempt: Attempt) -> None:
        """An attempt failed; the dispatcher moves on if it can."""


LOOP_DETECTED = 508
"""HTTP's Loop Detected: the answer of a router that sees a request come back."""


def loop_detected(hops: int) -> RouterError:
    """508 for a request that has passed through ``hops`` routers already."""
    return RouterError(
        LOOP_DETECTED,
        f"Routing loop: this request has already passed through {hops} routers "
        "(x-modelrouter-hops). Check that no upstream base_url points back at a router.",
        type="server_error",
        code="loop_detected",
    )


def skipped_attempts(plan: Plan) -> list[Attempt]:
    return [
        Attempt(e.name, e.provider.name, None, reason, 0.0, "skipped") for e, reason in plan.skipped
    ]


def client_error(err: ProviderError, entry: ModelEntry, attempts: list[Attempt]) -> RouterError:
    """The upstream blamed the request: hand its answer back as it gave it."""
    body = err.body if err.body and err.body.lstrip().startswith(b"{") else None
    return RouterError(
        err.status or 400,
        err.message,
        type="invalid_request_error",
        raw_body=body,
        attempts=attempts,
        headers={"x-modelrouter-model": entry.name, "x-modelrouter-attempts": str(len(attempts))},
    )


def internal_error(attempts: list[Attempt]) -> RouterError:
    """A bug in the router ended the request (its traceback is in the log)."""
    return RouterError(
        500,
        "Internal error in modelrouter; the details are in its log.",
        type="server_error",
        code="internal_error",
        attempts=attempts,
    )


def exhausted(plan: Plan, attempts: list[Attempt], *, deadline_hit: bool) -> RouterError:
    """The error for a request that no candidate served."""
    extra: dict[str, Any] = {}
    if plan.notes:
        # Why some models were ranked last (breaker open until ..., cooling down ...).
        extra["ranking"] = dict(plan.notes)
    tried = [a for a in attempts if a.outcome != "skipped"]
    if not tried:
        why = "; ".join(f"{a.model}: {a.error}" for a in attempts) or "no models"
        return RouterError(
            503,
            f"No model of {plan.route!r} could be tried ({why}).",
            type="server_error",
            code="no_available_model",
            attempts=attempts,
            extra=extra,
            # Every model was skipped for what the request needs (context, tools,
            # images): the same request will be skipped again.
            should_retry=False,
        )
    if all(a.outcome == Failure.RATE_LIMIT.value for a in tried):
        waits = [a.retry_after for a in tried if a.retry_after is not None]
        return RouterError(
            429,
            f"Every model of {plan.route!r} is rate limited; retry later.",
            type="rate_limit_error",
            code="rate_limited",
            attempts=attempts,
            extra=extra,
            headers=retry_after_header(min(waits) if waits else 1.0),
        )
    if any(a.status == LOOP_DETECTED for a in tried):
        # An upstream router saw this request come back: pass the verdict on, so the
        # routers above do not retry a loop (each retry would run the loop again).
        return RouterError(
            LOOP_DETECTED,
            f"Routing loop: a model of {plan.route!r} is a router that sent the request back.",
            type="server_error",
            code="loop_detected",
            attempts=attempts,
            extra=extra,
        )
    last = tried[-1]
    why = "request deadline reached" if deadline_hit else f"last error: {last.error}"
    return RouterError(
        502,
        f"All models of {plan.route!r} failed after {len(tried)} attempts ({why}).",
        type="upstream_error",
        code="all_models_failed",
        attempts=attempts,
        extra=extra,
    )


def retry_after_header(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header in whole seconds, rounded up."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def stream_failure(message: str, entry: ModelEntry) -> str:
    """What the client is told of a stream that failed after its first event."""
    return f"upstream stream from {entry.name!r} failed: {message}"


def stream_error_event(message: str, entry: ModelEntry) -> bytes:
    """The SSE event that ends a stream which failed after its first event."""
    payload = {
        "error": {
            "message": stream_failure(message, entry),
            "type": "upstream_error",
            "param": None,
            "code": "stream_interrupted",
        }
    }
    return sse_event(payload)
