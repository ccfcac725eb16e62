"""``GET /v1/models`` and ``/v1/models/{id}``: routes and models in OpenAI's list shape.

Each entry carries an extra ``modelrouter`` object with its kind (route or model),
members or provider, and current health state (see :mod:`modelrouter.reports`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, check_key, error_response, json_response, request_id
from modelrouter.errors import RouterError, model_not_found
from modelrouter.frontdoor import FrontDoor


def models_handlers(door: FrontDoor) -> tuple[Handler, Handler]:
    """The list and retrieve handlers bound to one front door."""

    async def list_models(http: Request) -> Response:
        rid = request_id(http)
        try:
            check_key(http, door)
        except RouterError as err:
            return error_response(err, rid)
        return json_response({"object": "list", "data": door.model_objects()}, rid)

    async def get_model(http: Request) -> Response:
        rid = request_id(http)
        wanted = http.path_params["model_id"]
        try:
            check_key(http, door)
            for obj in door.model_objects():
                if obj["id"] == wanted:
                    return json_response(obj, rid)
            raise model_not_found(wanted)
        except RouterError as err:
            return error_response(err, rid)

    return list_models, get_model
