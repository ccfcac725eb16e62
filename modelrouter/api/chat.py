"""``POST /v1/chat/completions``: OpenAI Chat Completions through the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import (
    Handler,
    check_key,
    error_response,
    read_body,
    request_id,
    route_hints,
)
from modelrouter.api.sse import SSEResponse
from modelrouter.dispatch import CLIENT_GONE, Outcome
from modelrouter.errors import RouterError
from modelrouter.registry import Plan
from modelrouter.runtime import Runtime
from providers.base import ChatRequest

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
CLIENT_CLOSED = 499
"""Logged status of a stream whose client left before its end (nginx's convention)."""


def served_headers(rid: str, out: Outcome) -> dict[str, str]:
    """The response headers that say who answered and after how many attempts."""
    return {
        "x-request-id": rid,
        "x-modelrouter-model": out.entry.name,
        "x-modelrouter-provider": out.entry.provider.name,
        "x-modelrouter-attempts": str(sum(a.outcome != "skipped" for a in out.attempts)),
    }


async def respond(
    rt: Runtime, rid: str, request: ChatRequest, plan: Plan, started: float, via: str = "http"
) -> Response:
    """Dispatch a prepared request and build its HTTP response (stream or not)."""
    dispatcher = rt.dispatcher
    body: dict[str, Any] | None = request.body if rt.log_bodies else None
    try:
        if not request.stream:
            out = await dispatcher.complete(request, plan)
        else:
            out = await dispatcher.open_stream(request, plan)
    except RouterError as err:
        rt.log_failure(rid, plan, err, started, stream=request.stream, via=via)
        return error_response(err, rid)
    headers = served_headers(rid, out)
    if out.completion is not None:
        rt.log_request(rid, plan, 200, started, out.attempts, out=out, via=via, body=body)
        return Response(out.completion.body, headers=headers, media_type="application/json")

    def on_end(done: Outcome, error: str | None) -> None:
        rt.log_request(
            rid,
            plan,
            CLIENT_CLOSED if done.cut == CLIENT_GONE else 200,
            started,
            done.attempts,
            out=done,
            stream=True,
            error=error or done.cut,
            via=via,
            body=body,
        )

    def client_left() -> None:
        out.client_gone = True

    events: AsyncIterator[bytes] = dispatcher.relay(request, out, on_end)
    headers.update(SSE_HEADERS)
    return SSEResponse(events, headers, client_left)


def chat_handler(rt: Runtime) -> Handler:
    """Build the handler bound to one runtime."""
    server = rt.settings.server
    keys = [k.encode() for k in server.api_keys]
    limit_mb = server.max_body_mb
    limit = int(limit_mb * 1024 * 1024)

    async def chat_completions(http: Request) -> Response:
        rid = request_id(http)
        started = rt.dispatcher.now()
        try:
            check_key(http, keys)
            body = await read_body(http, limit, limit_mb)
            models, hops = route_hints(http)
            request, plan = rt.prepare(body, models, hops=hops)
        except RouterError as err:
            rt.log_failure(rid, None, err, started)
            return error_response(err, rid)
        return await respond(rt, rid, request, plan, started)

    return chat_completions
