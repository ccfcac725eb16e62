"""What every HTTP handler shares: request ids, auth, body limits, error responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelrouter.errors import RouterError, bad_request, too_large
from modelrouter.frontdoor import Call, FrontDoor, new_request_id
from modelrouter.recording import parse_tags
from providers.base import InvalidBody, decode_object
from providers.http import HOPS_HEADER

Handler = Callable[[Request], Awaitable[Response]]
TAGS_HEADER = "x-modelrouter-tags"
"""Tags for the call log: ``x-modelrouter-tags: a,b``."""


def client_request_id(request: Request) -> str | None:
    """The client's ``x-request-id``, if it sent a sane one."""
    rid = request.headers.get("x-request-id")
    return rid if rid and len(rid) <= 128 and rid.isprintable() else None


def request_id(request: Request) -> str:
    """The client's ``x-request-id`` if it sent a sane one, else a new id."""
    return client_request_id(request) or new_request_id()


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def hops_of(request: Request) -> int:
    """The ``x-modelrouter-hops`` count a request arrived with (0 if none or unreadable)."""
    raw = request.headers.get(HOPS_HEADER)
    ok = raw is not None and raw.isascii() and raw.isdigit() and len(raw) < 4
    return int(raw) if ok and raw is not None else 0


def call_of(request: Request, door: FrontDoor) -> Call:
    """Who is calling over HTTP, as the front door needs to know it."""
    own = new_request_id()
    headers = request.headers
    return Call(
        surface="http",
        request_id=client_request_id(request) or own,
        record_id=own,
        started=door.now(),
        credential=bearer(request),
        models_header=headers.get("x-modelrouter-models"),
        hops=hops_of(request),
        endpoint=request.scope["path"],
        tags=parse_tags(headers.get(TAGS_HEADER)),
    )


async def read_body(request: Request, limit_mb: float) -> bytes:
    """The request body, refusing anything over ``limit_mb`` before reading it all."""
    limit = int(limit_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit_mb)
    if declared is not None:
        body = await request.body()
        if len(body) > limit:
            raise too_large(limit_mb)
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit_mb)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object body or raise a 400 that says what is wrong."""
    try:
        return decode_object(raw)
    except InvalidBody as err:
        raise bad_request(str(err)) from None


def error_response(err: RouterError, rid: str) -> Response:
    """An OpenAI-shaped error response carrying the request id."""
    headers = {"x-request-id": rid, **err.headers}
    return Response(
        err.body(), status_code=err.status, headers=headers, media_type="application/json"
    )


def json_response(obj: Any, rid: str | None = None, status: int = 200) -> Response:
    """A JSON response serialized with orjson."""
    headers = {"x-request-id": rid} if rid else None
    return Response(
        orjson.dumps(obj), status_code=status, headers=headers, media_type="application/json"
    )
