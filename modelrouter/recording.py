"""The call-log record of a request, built by the front door when the request ends.

:func:`make_record` gathers what the front door knows (the :class:`Call`, the plan,
the outcome or the error) into one :class:`~modelrouter.store.record.CallRecord`.
Tokens come from the upstream's OpenAI-shaped ``usage``; the price from
:func:`cost_of`, the one place the cost module plugs in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelrouter.errors import Attempt
from modelrouter.registry import ModelEntry, Plan
from modelrouter.store.record import CallRecord
from providers.base import ChatRequest, InvalidBody

MAX_TAGS = 16
MAX_TAG_LEN = 64


@dataclass(slots=True)
class Call:
    """Who is calling and by which door: what every record of the request names."""

    surface: str
    """``"http"`` or ``"mcp"``."""
    request_id: str
    started: float
    """When the surface took the request in (the front door's clock)."""
    credential: str | None = None
    """The API key the caller presented, if any; never recorded."""
    models_header: str | None = None
    """An ad-hoc fallback list given outside the body (``x-modelrouter-models``)."""
    hops: int = 0
    """Routers this request passed through before this one."""
    endpoint: str = ""
    """The HTTP path, or the MCP tool's name."""
    record_id: str = ""
    """The router's own id for the record (``request_id`` unless the client chose that)."""
    tags: Sequence[str] = ()
    """From the ``x-modelrouter-tags`` header (:func:`parse_tags`)."""
    requested_model: str | None = None
    """The request's ``model``, once the body is read."""
    user: str | None = None
    """The request's ``user``, once the body is read."""
    request: ChatRequest | None = field(default=None, repr=False)

    def note(self, request: ChatRequest) -> None:
        """Remember what the record needs from the request's body."""
        self.request = request
        try:
            model, user = request.get("model"), request.get("user")
        except InvalidBody:
            return  # preparing the request says what is wrong with it
        self.requested_model = model if isinstance(model, str) else None
        self.user = user if isinstance(user, str) else None


def parse_tags(header: str | None) -> tuple[str, ...]:
    """The tags of an ``x-modelrouter-tags: a,b`` header (trimmed, bounded, no empties)."""
    if not header:
        return ()
    tags = (t.strip()[:MAX_TAG_LEN] for t in header.split(","))
    return tuple(t for t in tags if t)[:MAX_TAGS]


def tokens_of(usage: dict[str, Any] | None) -> tuple[int | None, int | None, int | None]:
    """Input, output and cached input tokens of an OpenAI ``usage`` object."""
    if not usage:
        return None, None, None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), _int(cached)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cost_of(entry: ModelEntry | None, usage: dict[str, Any] | None) -> tuple[float | None, bool]:
    """``(cost_usd, price_unknown)`` of one request: THE PLACE THE COST MODULE PLUGS IN.

    For now: the served model's configured prices (``input_cost_per_mtok``,
    ``output_cost_per_mtok``) times the upstream's token counts. ``price_unknown`` when
    a price is missing (the cost is then 0). modelrouter.cost replaces this body
    (catalogue prices, cached-token prices, estimated usage) at merge time.
    """
    if entry is None:
        return None, False
    s = entry.settings
    known = s.input_cost_per_mtok is not None and s.output_cost_per_mtok is not None
    tokens_in, tokens_out, _ = tokens_of(usage)
    if usage is None:
        return None, not known  # tokens unknown: so is the cost
    cost = (tokens_in or 0) * (s.input_cost_per_mtok or 0.0)
    cost += (tokens_out or 0) * (s.output_cost_per_mtok or 0.0)
    return cost / 1_000_000, not known


def fallbacks_of(attempts: Sequence[Attempt]) -> int:
    """Attempts beyond the first (skipped models were not tried)."""
    return max(0, sum(a.outcome != "skipped" for a in attempts) - 1)


def make_record(
    call: Call,
    plan: Plan | None,
    *,
    status: int,
    attempts: Sequence[Attempt],
    stream: bool,
    latency_s: float,
    error_code: str | None = None,
    entry: ModelEntry | None = None,
    usage: dict[str, Any] | None = None,
    ttft_s: float | None = None,
    answer: str | None = None,
    log_bodies: bool = False,
) -> CallRecord:
    """The record of a request that ends now."""
    tokens_in, tokens_out, cached = tokens_of(usage)
    cost, price_unknown = cost_of(entry, usage)
    request_body = None
    if log_bodies and call.request is not None:
        try:
            request_body = orjson.dumps(call.request.body.get("messages")).decode()
        except (InvalidBody, orjson.JSONEncodeError):
            pass  # a body that cannot be decoded was refused for it: the record says so
    return CallRecord(
        id=call.record_id or call.request_id,
        request_id=call.request_id,
        ts=time.time(),
        surface=call.surface,
        endpoint=call.endpoint,
        route=plan.route if plan is not None else None,
        requested_model=call.requested_model,
        model=entry.name if entry is not None else None,
        provider=entry.provider.name if entry is not None else None,
        status=status,
        # Every failed status has a code: the store's errors index relies on it.
        error_code=error_code or (f"http_{status}" if status >= 400 else None),
        stream=stream,
        latency_ms=round(latency_s * 1000, 3),
        ttft_ms=round(ttft_s * 1000, 3) if ttft_s is not None else None,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cached_tokens=cached,
        cost_usd=cost,
        price_unknown=price_unknown,
        usage_estimated=False,
        fallbacks=fallbacks_of(attempts),
        attempts=list(attempts),
        user=call.user,
        tags=call.tags,
        request_body=request_body,
        response_body=answer if log_bodies else None,
    )


def stream_answer(events: Sequence[bytes]) -> str:
    """The text a stream's events carried (``choices[0].delta.content`` joined)."""
    parts: list[str] = []
    for event in events:
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue  # [DONE]
            choices = data.get("choices") if isinstance(data, dict) else None
            if choices and isinstance(choices[0], dict):
                delta = choices[0].get("delta") or {}
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str):
                    parts.append(content)
    return "".join(parts)
