"""What every HTTP handler shares: request ids, auth, body limits, error responses."""

from __future__ import annotations

import hmac
import itertools
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelrouter.attempts import LOOP_DETECTED
from modelrouter.errors import RouterError, bad_request, too_large, unauthorized
from providers.base import InvalidBody, decode_object
from providers.http import HOPS_HEADER

Handler = Callable[[Request], Awaitable[Response]]


_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


def new_request_id() -> str:
    """A process-unique id: a random per-process prefix and a counter (no syscall)."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


def request_id(request: Request) -> str:
    """The client's ``x-request-id`` if it sent a sane one, else a new id."""
    rid = request.headers.get("x-request-id")
    if rid and len(rid) <= 128 and rid.isprintable():
        return rid
    return new_request_id()


MAX_HOPS = 5
"""A request that has already passed through this many routers is refused (508):
enough for gateways in front of gateways, few enough to stop a router calling itself."""


def route_hints(request: Request) -> tuple[str | None, int]:
    """The ``x-modelrouter-models`` list and the hop count; 508 for a routing loop."""
    raw = request.headers.get(HOPS_HEADER)
    hops = int(raw) if raw is not None and raw.isdigit() and len(raw) < 4 else 0
    if hops >= MAX_HOPS:
        raise RouterError(
            LOOP_DETECTED,
            f"Routing loop: this request has already passed through {hops} routers "
            f"({HOPS_HEADER}). Check that no upstream base_url points back at a router.",
            type="server_error",
            code="loop_detected",
        )
    return request.headers.get("x-modelrouter-models"), hops


def check_key(request: Request, keys: list[bytes]) -> None:
    """Raise 401 unless the bearer token matches one of ``keys`` (constant time)."""
    if keys and not has_key(request, keys):
        raise unauthorized()


def has_key(request: Request, keys: list[bytes]) -> bool:
    """Whether the bearer token matches one of ``keys`` (constant time; no keys: yes)."""
    if not keys:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    ok = False
    for key in keys:
        # Compare against every key, so timing says nothing about which one matched.
        ok |= hmac.compare_digest(given, key)
    return ok


async def read_body(request: Request, limit: int, limit_mb: float) -> bytes:
    """The request body, refusing anything over ``limit`` bytes before reading it all."""
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
