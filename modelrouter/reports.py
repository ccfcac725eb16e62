"""Reports on the router's state that every surface renders: health and the model list.

``GET /health``, ``/readyz`` and ``/v1/models`` serve them over HTTP; the MCP tools
and resources serve the same data. They live here, in the core, so both surfaces
show one truth.
"""

from __future__ import annotations

import random
from typing import Any

from modelrouter.health import Breaker
from modelrouter.ranking import rank
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
                    "mode": s.mode,
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
    return {
        "status": "ok" if is_ready(rt) else "degraded",
        "instance": rt.instance,
        "cluster": cluster_report(rt),
        "models": models,
        "routes": routes,
        "store": rt.calls.health(),
    }


LOCAL_ONLY = {"redis": "off", "mode": "local"}
"""``cluster`` in ``/health`` without ``cluster.redis_url``."""


def cluster_report(rt: Runtime) -> dict[str, Any]:
    """``{redis, mode, ...}``: whether this replica shares state through Redis now."""
    return dict(LOCAL_ONLY) if rt.cluster is None else rt.cluster.report()


HIDDEN = "hidden: send an API key to see error details"
STORE_DETAILS = frozenset({"url", "spool_dir", "spool_error", "last_error"})
"""Store details that name hosts and paths: for callers with a key only."""
CLUSTER_DETAILS = frozenset({"last_error", "prefix"})
"""Cluster details that name hosts: for callers with a key only."""


def public_view(report: dict[str, Any], *, keep_instance: bool = False) -> dict[str, Any]:
    """``report`` without upstream error text (which names upstream hosts).

    What an unauthenticated caller of ``/health`` sees when keys are configured:
    states, breakers, ranks and latencies, but no messages; the replica's name only if
    ``keep_instance`` (a default name is its host and port).
    """
    models = {}
    for name, snap in report["models"].items():
        snap = dict(snap)
        if snap.get("last_error"):
            snap["last_error"] = {**snap["last_error"], "message": HIDDEN}
        if snap.get("last_probe") and snap["last_probe"].get("error"):
            snap["last_probe"] = {**snap["last_probe"], "error": HIDDEN}
        models[name] = snap
    store = {k: v for k, v in report["store"].items() if k not in STORE_DETAILS}
    cluster = {k: v for k, v in report["cluster"].items() if k not in CLUSTER_DETAILS}
    if isinstance(cluster.get("limits"), dict):
        cluster["limits"] = {k: v for k, v in cluster["limits"].items() if k != "last_error"}
    instance = report["instance"] if keep_instance else "hidden: send an API key to see it"
    return {**report, "instance": instance, "models": models, "store": store, "cluster": cluster}


def is_ready(rt: Runtime) -> bool:
    """Every route has at least one model whose breaker is not open."""
    tracker = rt.tracker
    return all(
        any(tracker.status(m).breaker is not Breaker.OPEN for m in members)
        for members in rt.registry.routes.values()
    )
