"""``GET /v1/key``: the calling key's own view (:mod:`modelrouter.governance.whoami`)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, bearer, error_response, json_response, request_id
from modelrouter.errors import RouterError, unauthorized
from modelrouter.frontdoor import FrontDoor
from modelrouter.governance.watch import KeyService
from modelrouter.governance.whoami import describe


def key_info_handler(door: FrontDoor, service: KeyService) -> Handler:
    """The handler of ``GET /v1/key`` (any accepted key; 401 otherwise)."""

    async def handler(http: Request) -> Response:
        rid = request_id(http)
        try:
            identity = door.identify(bearer(http))
            if identity is None:
                raise unauthorized()
            answer = await describe(identity, open=door.open, service=service, now=time.time())
            return json_response(answer, rid)
        except RouterError as err:
            return error_response(err, rid)

    return handler
