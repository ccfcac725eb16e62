"""``POST /v1/chat/completions``: OpenAI Chat Completions in and out of the front door."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, call_of, error_response, read_body
from modelrouter.api.sse import SSEResponse
from modelrouter.errors import RouterError
from modelrouter.frontdoor import Call, Completed, FrontDoor, Served
from modelrouter.governance.wire import raw

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def served_headers(rid: str, result: Served) -> dict[str, str]:
    """The response headers that say who answered and after how many attempts (the
    ``x-ratelimit-*`` ones of a limited key are added by :func:`limited`)."""
    return {
        "x-request-id": rid,
        "x-modelrouter-model": result.model,
        "x-modelrouter-provider": result.provider,
        "x-modelrouter-attempts": str(result.tries),
    }


def limited(response: Response, result: Served) -> Response:
    """``response`` with a limited key's ``x-ratelimit-*`` headers, already encoded
    (half the cost of handing them to Starlette as text, on every limited answer)."""
    if result.limits:
        response.raw_headers.extend(raw(result.limits))
    return response


async def respond(door: FrontDoor, call: Call, body: bytes | dict[str, Any]) -> Response:
    """Run a chat body through the front door and answer it over HTTP (stream or not)."""
    try:
        result = await door.chat(call, body)
    except RouterError as err:
        return error_response(err, call.request_id)
    headers = served_headers(call.request_id, result)
    if isinstance(result, Completed):
        body = result.completion.body
        return limited(Response(body, headers=headers, media_type="application/json"), result)
    assert result.events is not None
    headers.update(SSE_HEADERS)
    return limited(SSEResponse(result.events, headers, result.client_left), result)


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
