"""``GET /v1/models`` and ``/v1/models/{id}``: routes and models in OpenAI's list shape.

Each entry carries an extra ``modelrouter`` object with its kind (route or model),
members or provider, and current health state (see :mod:`modelrouter.reports`). A key
with an allow-list sees only what it may use: another id is a 404, as if it did not
exist.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, bearer, error_response, json_response, request_id
from modelrouter.errors import RouterError, model_not_found, unauthorized
from modelrouter.frontdoor import FrontDoor
from modelrouter.governance.types import Identity


def models_handlers(door: FrontDoor) -> tuple[Handler, Handler]:
    """The list and retrieve handlers bound to one front door."""

    def caller(http: Request) -> Identity:
        identity = door.identify(bearer(http))
        if identity is None:
            raise unauthorized()
        return identity

    def answer(obj: object, rid: str, identity: Identity) -> Response:
        response = json_response(obj, rid)
        response.headers.update(door.gate.headers(identity))
        return response

    async def list_models(http: Request) -> Response:
        rid = request_id(http)
        try:
            identity = caller(http)
        except RouterError as err:
            return error_response(err, rid)
        data = door.model_objects(identity)
        return answer({"object": "list", "data": data}, rid, identity)

    async def get_model(http: Request) -> Response:
        rid = request_id(http)
        wanted = http.path_params["model_id"]
        try:
            identity = caller(http)
        except RouterError as err:
            return error_response(err, rid)
        for obj in door.model_objects(identity):
            if obj["id"] == wanted:
                return answer(obj, rid, identity)
        missing = model_not_found(wanted)
        missing.headers.update(door.gate.headers(identity))
        return error_response(missing, rid)

    return list_models, get_model
