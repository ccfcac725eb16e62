"""``POST /v1/prompts/{name}``: run a configured prompt as a chat completion.

Body: ``{"variables": {...}, "stream": false, ...chat params}``. The answer is exactly
what ``POST /v1/chat/completions`` would give for the filled-in prompt, streaming
included, because it goes through the same :func:`modelrouter.api.chat.respond`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.chat import respond
from modelrouter.api.common import (
    Handler,
    check_key,
    error_response,
    parse_json_object,
    read_body,
    request_id,
    route_hints,
)
from modelrouter.errors import RouterError
from modelrouter.prompts import prompt_chat_body
from modelrouter.runtime import Runtime


def prompt_handler(rt: Runtime) -> Handler:
    """Build the handler bound to one runtime."""
    server = rt.settings.server
    keys = [k.encode() for k in server.api_keys]
    limit_mb = server.max_body_mb
    limit = int(limit_mb * 1024 * 1024)
    prompts = rt.settings.prompts

    async def run_prompt(http: Request) -> Response:
        rid = request_id(http)
        started = rt.dispatcher.now()
        try:
            check_key(http, keys)
            body = parse_json_object(await read_body(http, limit, limit_mb))
            chat = prompt_chat_body(prompts, http.path_params["name"], body)
            models, hops = route_hints(http)
            request, plan = rt.prepare(chat, models, hops=hops)
        except RouterError as err:
            rt.log_failure(rid, None, err, started)
            return error_response(err, rid)
        return await respond(rt, rid, request, plan, started)

    return run_prompt
