"""``GET /v1/models`` and ``/v1/models/{id}``: routes and models in OpenAI's list shape.

Each entry carries an extra ``modelrouter`` object with its kind (route or model),
members or provider, and current health state.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, check_key, error_response, json_response, request_id
from modelrouter.errors import RouterError, model_not_found
from modelrouter.runtime import Runtime


def model_objects(rt: Runtime) -> list[dict[str, Any]]:
    """Every route and model as an OpenAI model object with router extras."""
    reg = rt.registry
    tracker = rt.tracker
    out: list[dict[str, Any]] = []
    for name, members in reg.routes.items():
        states = {m: tracker.snapshot(m)["state"] for m in members}
        out.append(
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "modelrouter",
                "modelrouter": {
                    "kind": "route",
                    "strategy": reg.strategies[name],
                    "models": members,
                    "states": states,
                },
            }
        )
    for name, entry in reg.models.items():
        s = entry.settings
        out.append(
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": entry.provider.name,
                "modelrouter": {
                    "kind": "model",
                    "provider": entry.provider.name,
                    "upstream_model": entry.target.upstream_model,
                    "state": tracker.snapshot(name)["state"],
                    "context_window": s.context_window,
                    "supports_tools": s.supports_tools,
                    "supports_vision": s.supports_vision,
                },
            }
        )
    return out


def models_handlers(rt: Runtime) -> tuple[Handler, Handler]:
    """The list and retrieve handlers bound to one runtime."""
    keys = [k.encode() for k in rt.settings.server.api_keys]

    async def list_models(http: Request) -> Response:
        rid = request_id(http)
        try:
            check_key(http, keys)
        except RouterError as err:
            return error_response(err, rid)
        return json_response({"object": "list", "data": model_objects(rt)}, rid)

    async def get_model(http: Request) -> Response:
        rid = request_id(http)
        wanted = http.path_params["model_id"]
        try:
            check_key(http, keys)
            for obj in model_objects(rt):
                if obj["id"] == wanted:
                    return json_response(obj, rid)
            raise model_not_found(wanted)
        except RouterError as err:
            return error_response(err, rid)

    return list_models, get_model
