"""``POST /v1/chat/completions``: OpenAI Chat Completions in and out of the front door."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, call_of, error_response, read_body
from modelrouter.api.sse import SSEResponse
from modelrouter.errors import RouterError
from modelrouter.frontdoor import Call, Completed, FrontDoor, Served

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def served_headers(rid: str, result: Served) -> dict[str, str]:
    """The response headers that say who answered and after how many attempts (and,
    for a limited key, the ``x-ratelimit-*`` headers)."""
    headers = {
        "x-request-id": rid,
        "x-modelrouter-model": result.model,
        "x-modelrouter-provider": result.provider,
        "x-modelrouter-attempts": str(result.tries),
    }
    if result.limits:
        headers.update(result.limits)
    return headers


async def respond(door: FrontDoor, call: Call, body: bytes | dict[str, Any]) -> Response:
    """Run a chat body through the front door and answer it over HTTP (stream or not)."""
    try:
        result = await door.chat(call, body)
    except RouterError as err:
        return error_response(err, call.request_id)
    headers = served_headers(call.request_id, result)
    if isinstance(result, Completed):
        return Response(result.completion.body, headers=headers, media_type="application/json")
    assert result.events is not None
    headers.update(SSE_HEADERS)
    return SSEResponse(result.events, headers, result.client_left)


def chat_handler(door: FrontDoor, max_body_mb: float) -> Handler:
    """Build the handler bound to one front door."""

    async def chat_completions(http: Request) -> Response:
        call = call_of(http, door)
        try:
            body = await read_body(http, max_body_mb)
        except RouterError as err:
            return error_response(door.refuse(call, err), call.request_id)
        return await respond(door, call, body)

    return chat_completions
