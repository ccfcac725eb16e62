"""``POST /v1/prompts/{name}``: run a configured prompt as a chat completion.

Body: ``{"variables": {...}, "stream": false, ...chat params}``. The answer is exactly
what ``POST /v1/chat/completions`` would give for the filled-in prompt, streaming
included, because it goes through the same front door and :func:`respond`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.chat import respond
from modelrouter.api.common import Handler, call_of, error_response, parse_json_object, read_body
from modelrouter.errors import RouterError
from modelrouter.frontdoor import FrontDoor


def prompt_handler(door: FrontDoor, max_body_mb: float) -> Handler:
    """Build the handler bound to one front door."""

    async def run_prompt(http: Request) -> Response:
        call = call_of(http, door)
        try:
            door.admit(call)
            body = parse_json_object(await read_body(http, max_body_mb))
            chat = door.prompt_body(http.path_params["name"], body)
        except RouterError as err:
            return error_response(door.refuse(call, err), call.request_id)
        return await respond(door, call, chat)

    return run_prompt
