"""``GET /metrics``: Prometheus's text (or OpenMetrics, if the scraper asks for it).

Open by default. With ``[metrics] require_key = true`` it needs one of
``server.admin_keys`` as a bearer key (401 without; 404 while no admin key is
configured, as for the rest of the admin surface).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.admin import AdminGate
from modelrouter.api.common import Handler, error_response, request_id
from modelrouter.errors import RouterError, unauthorized
from modelrouter.observe.exposition import Exposition
from modelrouter.settings import Settings


def metrics_handler(exposition: Exposition, settings: Settings) -> Handler:
    """The ``/metrics`` endpoint over one worker's :class:`Exposition`."""
    protected = settings.metrics.require_key
    keys = settings.server.admin_keys
    gate = AdminGate(keys)

    async def metrics(http: Request) -> Response:
        if protected:
            err: RouterError | None = None
            if not keys:
                err = RouterError(
                    404,
                    "/metrics needs an admin key ([metrics] require_key = true) and "
                    "server.admin_keys is empty.",
                    code="not_found",
                )
            elif not gate.allows(http):
                err = unauthorized()
                err.message = "Invalid or missing admin key (server.admin_keys) for /metrics."
            if err is not None:
                return error_response(err, request_id(http))
        body, content_type = exposition.render(http.headers.get("accept"))
        return Response(body, media_type=content_type)

    return metrics
