"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/health`` (per-model detail)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, bearer, json_response
from modelrouter.frontdoor import FrontDoor


def health_handlers(door: FrontDoor) -> tuple[Handler, Handler, Handler]:
    """``/healthz``, ``/readyz`` and ``/health`` bound to one front door."""

    async def healthz(http: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(http: Request) -> Response:
        ready = door.ready()
        return json_response({"ready": ready}, status=200 if ready else 503)

    async def health(http: Request) -> Response:
        # Upstream error text names upstream hosts: only for callers with a key.
        return json_response(door.health(detailed=door.authenticate(bearer(http))))

    return healthz, readyz, health
