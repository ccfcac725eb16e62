"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/health`` (per-model detail)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, bearer, json_response
from modelrouter.frontdoor import FrontDoor
from modelrouter.governance.watch import KeyService


def health_handlers(
    door: FrontDoor, keys: KeyService | None = None
) -> tuple[Handler, Handler, Handler]:
    """``/healthz``, ``/readyz`` and ``/health`` bound to one front door (and, in
    ``/health``, the state of the keys loaded from the store)."""

    async def healthz(http: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(http: Request) -> Response:
        ready = door.ready()
        return json_response({"ready": ready}, status=200 if ready else 503)

    async def health(http: Request) -> Response:
        # Upstream error text names upstream hosts: only for callers with a key.
        detailed = door.authenticate(bearer(http))
        report = door.health(detailed=detailed)
        if keys is not None:
            state = keys.health()
            report["keys"] = state if detailed else {"state": state["state"]}
        return json_response(report)

    return healthz, readyz, health
