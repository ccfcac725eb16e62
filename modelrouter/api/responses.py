"""``POST /v1/responses``: OpenAI's Responses API, stateless, in and out of the front door.

The body is translated to a chat body once (:mod:`providers.responses_in`), runs
through the front door like any chat request, and the answer is translated back once
(:mod:`providers.responses_out`): a ``response`` object, or the API's typed stream
events ending in ``response.completed`` (``response.failed`` after a failure).
Errors use OpenAI's shape, as on the chat door. Nothing is stored: a request that
needs a stored response or conversation is a 400 that says so.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.chat import SSE_HEADERS, limited, served_headers
from modelrouter.api.common import Handler, call_of, error_response, parse_json_object, read_body
from modelrouter.api.messages import IGNORED_HEADER
from modelrouter.api.sse import SSEResponse
from modelrouter.errors import RouterError, bad_request
from modelrouter.frontdoor import Call, Completed, FrontDoor
from providers.base import InvalidBody, ProviderError
from providers.responses_in import ResponsesRequest, to_chat
from providers.responses_out import ResponsesShape, to_response
from providers.sse import StreamShape


def _translate(raw: bytes) -> ResponsesRequest:
    try:
        return to_chat(parse_json_object(raw))
    except InvalidBody as err:
        raise bad_request(str(err), err.param) from None


async def _answer(door: FrontDoor, call: Call, http: Request, max_body_mb: float) -> Response:
    try:
        translated = _translate(await read_body(http, max_body_mb))
    except RouterError as err:
        return error_response(door.refuse(call, err), call.request_id)
    model = str(translated.chat.get("model") or "")

    def shape(as_sent: bool) -> StreamShape:
        # No provider speaks the Responses API itself: every answer is chat to translate.
        return ResponsesShape(translated.echo, model)

    try:
        result = await door.chat(call, translated.chat, shape=shape)
    except RouterError as err:
        return error_response(err, call.request_id)
    headers = served_headers(call.request_id, result)
    if translated.ignored:
        headers[IGNORED_HEADER] = ",".join(translated.ignored)
    if isinstance(result, Completed):
        body = to_response(result.completion.body, translated.echo, model)
        return limited(Response(body, headers=headers, media_type="application/json"), result)
    assert result.events is not None
    headers.update(SSE_HEADERS)
    return limited(SSEResponse(result.events, headers, result.client_left), result)


def responses_handler(door: FrontDoor, max_body_mb: float) -> Handler:
    """The ``/v1/responses`` handler of one front door."""

    async def responses(http: Request) -> Response:
        call = call_of(http, door)
        try:
            return await _answer(door, call, http, max_body_mb)
        except ProviderError as err:
            # The served answer could not be put in the Responses API's shape.
            failed = RouterError(
                502, f"Upstream answer unusable: {err.message}", type="server_error"
            )
            return error_response(failed, call.request_id)

    return responses
