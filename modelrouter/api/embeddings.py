"""``POST /v1/embeddings``: OpenAI embeddings in and out of the front door.

Routed over the models with ``mode = "embedding"``, with the same fallback, health and
call log as chat; OpenAI-compatible upstreams get the body as sent, Gemini and Ollama
are translated (:mod:`providers.embeddings`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.chat import limited, served_headers
from modelrouter.api.common import Handler, call_of, error_response, read_body
from modelrouter.errors import RouterError
from modelrouter.frontdoor import FrontDoor


def embeddings_handler(door: FrontDoor, max_body_mb: float) -> Handler:
    """The ``/v1/embeddings`` handler of one front door."""

    async def embeddings(http: Request) -> Response:
        call = call_of(http, door)
        try:
            body = await read_body(http, max_body_mb)
        except RouterError as err:
            return error_response(door.refuse(call, err), call.request_id)
        try:
            result = await door.embed(call, body)
        except RouterError as err:
            return error_response(err, call.request_id)
        headers = served_headers(call.request_id, result)
        body = result.completion.body
        return limited(Response(body, headers=headers, media_type="application/json"), result)

    return embeddings
