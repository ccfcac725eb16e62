"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's Messages API.

Anthropic SDK clients and Claude Code (``ANTHROPIC_BASE_URL``) point here unchanged.
The body is translated to a chat body once (:mod:`providers.anthropic_in`) and goes
through the front door like any chat request; the answer comes back translated once
(:mod:`providers.anthropic_out`), or untouched when an Anthropic model served it (the
request went upstream as sent). Errors are Anthropic's: ``{"type": "error", "error":
{"type", "message"}}`` with Anthropic's status codes. The key may come as
``x-api-key`` (Anthropic's header) or as a bearer token.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.chat import SSE_HEADERS, limited, served_headers
from modelrouter.api.common import Handler, bearer, call_of, parse_json_object, read_body
from modelrouter.api.sse import SSEResponse
from modelrouter.errors import RouterError, bad_request
from modelrouter.frontdoor import Call, Completed, FrontDoor
from providers import anthropic_out
from providers.anthropic_in import Translated, estimate_tokens, to_chat
from providers.anthropic_native import FORWARDED_HEADERS
from providers.base import ChatRequest, InvalidBody, Native, ProviderError

log = logging.getLogger(__name__)

MESSAGES_PREFIX = "/v1/messages"
"""The Anthropic door's paths: their errors are Anthropic's."""
IGNORED_HEADER = "x-modelrouter-ignored"
"""Names the request's Anthropic serving hints that the answering model (of another
vendor) did without, e.g. ``thinking,cache_control``."""


def api_key(http: Request) -> str | None:
    """The key of an Anthropic client: ``x-api-key``, else a bearer token."""
    return http.headers.get("x-api-key") or bearer(http)


def anthropic_error(err: RouterError, rid: str) -> Response:
    """``err`` in Anthropic's error shape and status codes."""
    status = anthropic_out.anthropic_status(err.status)
    body = err.raw_body
    if body is None or not _is_anthropic_error(body):
        payload = anthropic_out.error_object(status, err.message)
        if err.attempts:
            # The router's attempt trail, as on the chat door (clients ignore extras).
            payload["error"]["attempts"] = [a.as_dict() for a in err.attempts]
        body = orjson.dumps(payload)
    headers = {"x-request-id": rid, "request-id": rid, **err.headers}
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _is_anthropic_error(body: bytes) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("type") == "error"


def _translate(body: dict[str, Any]) -> Translated:
    try:
        return to_chat(body)
    except InvalidBody as err:
        raise bad_request(str(err), err.param) from None


def _native(raw: bytes, http: Request, translated: Translated) -> Native:
    headers = tuple((h, v) for h in FORWARDED_HEADERS if (v := http.headers.get(h)) is not None)
    try:
        request = ChatRequest.from_json(raw)
    except InvalidBody as err:
        raise bad_request(str(err), err.param) from None
    return Native("anthropic", request, headers, translated.unfit_reason)


async def _answer(door: FrontDoor, call: Call, http: Request, max_body_mb: float) -> Response:
    try:
        raw = await read_body(http, max_body_mb)
        body = parse_json_object(raw)
        translated = _translate(body)
        native = _native(raw, http, translated)
    except RouterError as err:
        return anthropic_error(door.refuse(call, err), call.request_id)
    model = str(body.get("model") or "")
    try:
        result = await door.chat(
            call, translated.chat, native=native, shape=anthropic_out.shape(model)
        )
    except RouterError as err:
        return anthropic_error(err, call.request_id)
    headers = served_headers(call.request_id, result)
    headers["request-id"] = call.request_id
    if translated.ignored and not result.native:
        headers[IGNORED_HEADER] = ",".join(translated.ignored)
    if isinstance(result, Completed):
        answer = result.completion.body
        if not result.native:
            answer = anthropic_out.to_message(answer, model)
        return limited(Response(answer, headers=headers, media_type="application/json"), result)
    assert result.events is not None
    headers.update(SSE_HEADERS)
    return limited(SSEResponse(result.events, headers, result.client_left), result)


def messages_handlers(door: FrontDoor, max_body_mb: float) -> tuple[Handler, Handler]:
    """The ``/v1/messages`` and ``/v1/messages/count_tokens`` handlers of one front door."""

    async def messages(http: Request) -> Response:
        call = call_of(http, door)
        call.credential = api_key(http)
        try:
            return await _answer(door, call, http, max_body_mb)
        except ProviderError as err:
            # The served answer could not be put in Anthropic's shape.
            failed = RouterError(502, f"Upstream answer unusable: {err.message}", type="api_error")
            return anthropic_error(failed, call.request_id)
        except Exception:
            log.exception("internal error on /v1/messages")
            crash = RouterError(500, "Internal error in modelrouter.", type="api_error")
            return anthropic_error(crash, call.request_id)

    async def count_tokens(http: Request) -> Response:
        call = call_of(http, door)
        call.credential = api_key(http)
        try:
            door.admit(call)
            body = parse_json_object(await read_body(http, max_body_mb))
            tokens = estimate_tokens(body)
        except RouterError as err:
            return anthropic_error(door.refuse(call, err), call.request_id)
        except InvalidBody as err:
            return anthropic_error(door.refuse(call, bad_request(str(err))), call.request_id)
        data = orjson.dumps({"input_tokens": tokens})
        headers = {"x-request-id": call.request_id, "request-id": call.request_id}
        return Response(data, headers=headers, media_type="application/json")

    return messages, count_tokens
