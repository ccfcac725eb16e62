"""The call-log record of a request, built by the front door when the request ends.

:func:`make_record` gathers what the front door knows (the :class:`Call`, the plan,
the outcome or the error) into one :class:`~modelrouter.store.record.CallRecord`.
Tokens come from the upstream's OpenAI-shaped ``usage`` (or the router's estimate),
the price from :func:`modelrouter.cost.cost_of`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelrouter.cost import cost_of
from modelrouter.errors import Attempt
from modelrouter.governance.types import UNRESTRICTED, Identity
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
    identity: Identity = UNRESTRICTED
    """Who the key says the caller is (set when the front door admits the request)."""
    preauthorized: bool = False
    """The surface authenticated the caller itself (the dashboard's playground, behind
    an admin session): the front door takes :attr:`identity` as it is."""

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
    usage_estimated: bool = False,
    ttft_s: float | None = None,
    answer: str | None = None,
    log_bodies: bool = False,
) -> CallRecord:
    """The record of a request that ends now."""
    cost = None
    if entry is not None:
        # The served model's cost only: failed attempts on other models bill nothing.
        upstream = entry.target.upstream_model
        cost = cost_of(entry, upstream, usage, estimated=usage_estimated)
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
        key_id=call.identity.key_id,
        key_name=call.identity.name,
        team=call.identity.team,
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
        input_tokens=cost.input_tokens if cost is not None else None,
        output_tokens=cost.output_tokens if cost is not None else None,
        cached_tokens=cost.cached_tokens if cost is not None else None,
        cost_usd=cost.cost_usd if cost is not None else None,
        price_unknown=cost.price_unknown if cost is not None else False,
        usage_estimated=cost.usage_estimated if cost is not None else False,
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
