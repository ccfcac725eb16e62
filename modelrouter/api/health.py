"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/health`` (per-model detail)."""

from __future__ import annotations

import random
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelrouter.api.common import Handler, json_response
from modelrouter.health import Breaker
from modelrouter.ranking import rank
from modelrouter.runtime import Runtime


def health_report(rt: Runtime) -> dict[str, Any]:
    """Every model's health and its rank in each route, as served by ``GET /health``."""
    reg = rt.registry
    tracker = rt.tracker
    models: dict[str, Any] = {}
    for name, entry in reg.models.items():
        snap = dict(tracker.snapshot(name))
        snap["provider"] = entry.provider.name
        snap["ranks"] = {}
        models[name] = snap
    routes: dict[str, Any] = {}
    for route, members in reg.routes.items():
        # A fixed-seed ranking: what an "ordered" request would see now, without
        # consuming the live random stream or slow-start draws.
        order, notes = rank(
            members,
            strategy="ordered",
            weights=reg.weights,
            tracker=tracker,
            rng=random.Random(0),
            probing=reg.settings.health.probe != "none",
        )
        for i, m in enumerate(order, 1):
            models[m]["ranks"][route] = i
        routes[route] = {
            "models": members,
            "strategy": reg.strategies[route],
            "order": order,
            "notes": notes,
            "ready": any(tracker.status(m).breaker is not Breaker.OPEN for m in members),
        }
    return {"status": "ok" if is_ready(rt) else "degraded", "models": models, "routes": routes}


def is_ready(rt: Runtime) -> bool:
    """Every route has at least one model whose breaker is not open."""
    tracker = rt.tracker
    return all(
        any(tracker.status(m).breaker is not Breaker.OPEN for m in members)
        for members in rt.registry.routes.values()
    )


def health_handlers(rt: Runtime) -> tuple[Handler, Handler, Handler]:
    """``/healthz``, ``/readyz`` and ``/health`` bound to one runtime."""

    async def healthz(http: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(http: Request) -> Response:
        ready = is_ready(rt)
        return json_response({"ready": ready}, status=200 if ready else 503)

    async def health(http: Request) -> Response:
        return json_response(health_report(rt))

    return healthz, readyz, health
