"""The dashboard's own endpoints, behind the session cookie (never a bearer key).

* ``GET /ui/api/health``: the detailed health report (``GET /health`` with a key).
* ``GET /ui/api/models``: routes and models (``GET /v1/models``).
* ``POST /ui/api/playground``: a chat completion body, run through the front door as
  an unrestricted call (surface ``http``, tag ``playground``), answered as
  ``/v1/chat/completions`` answers (stream or not, ``x-modelrouter-*`` headers).

The session stands for an admin key, not an API key: ``/v1`` itself stays closed to
the cookie, and the playground is the one way the dashboard sends chats. Its writes
need the session's CSRF token, like every write made with the cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelrouter.api.admin import csrf_failed
from modelrouter.api.chat import respond
from modelrouter.api.common import call_of, error_response, json_response, read_body, request_id
from modelrouter.api.session import Sessions
from modelrouter.errors import RouterError, unauthorized
from modelrouter.frontdoor import FrontDoor
from modelrouter.ui.pages import secure

PLAYGROUND_TAG = "playground"
"""The tag of every playground request in the call log."""

Handler = Callable[[Request], Awaitable[Response]]


def data_routes(door: FrontDoor, sessions: Sessions) -> list[Route]:
    """The ``/ui/api/*`` routes."""

    def with_session(handler: Handler) -> Handler:
        async def run(http: Request) -> Response:
            session = sessions.of(http)
            if session is None:
                err = unauthorized()
                err.message = "Log in to the dashboard first (/ui/login)."
                return secure(error_response(err, request_id(http)))
            if not sessions.csrf_ok(session, http):
                return secure(error_response(csrf_failed(), request_id(http)))
            return secure(await handler(http))

        return run

    async def health(http: Request) -> Response:
        return json_response(door.health(detailed=True))

    async def models(http: Request) -> Response:
        return json_response({"object": "list", "data": door.model_objects()})

    async def playground(http: Request) -> Response:
        call = call_of(http, door)
        call.preauthorized = True  # the admin session is the caller's credential
        call.credential = None
        call.tags = (*call.tags, PLAYGROUND_TAG)
        try:
            body = await read_body(http, door.settings.server.max_body_mb)
        except RouterError as err:
            return error_response(door.refuse(call, err), call.request_id)
        return await respond(door, call, body)

    return [
        Route("/ui/api/health", with_session(health), methods=["GET"]),
        Route("/ui/api/models", with_session(models), methods=["GET"]),
        Route("/ui/api/playground", with_session(playground), methods=["POST"]),
    ]
