"""Typed inputs and structured outputs of the MCP tools (their JSON schemas).

Also the read-only views shared by tools and resources: the model list, one
route's detail and the health report, all built from the live runtime.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from modelrouter.attempts import Attempt
from modelrouter.frontdoor import FrontDoor
from modelrouter.governance.types import Identity


class ChatMessage(BaseModel):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class AttemptInfo(BaseModel):
    """One try of one model: who, how it ended, how long it took."""

    model: str
    provider: str
    status: int | None = Field(description="Upstream HTTP status, if one came back")
    error: str | None
    duration_ms: float
    outcome: str = Field(description='"ok", "skipped" or the failure class ("server", ...)')

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptInfo:
        """From a dispatcher attempt."""
        return cls.model_validate(attempt.as_dict())


class Usage(BaseModel):
    """Token counts as the upstream reported them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class ChatResult(BaseModel):
    """The ``chat`` tool's answer."""

    content: str = Field(description="The assistant's answer")
    model: str = Field(description="The configured model that answered")
    provider: str
    attempts: list[AttemptInfo] = Field(description="Every attempt, in order, the last one ok")
    usage: Usage | None
    finish_reason: str | None


class CompareAnswer(BaseModel):
    """One model's answer in ``compare`` (``error`` set when it failed)."""

    model: str
    provider: str
    content: str | None
    latency_ms: float
    usage: Usage | None
    error: str | None


class CompareResult(BaseModel):
    """The ``compare`` tool's answers, in the order the models were given."""

    results: list[CompareAnswer]


class RouteInfo(BaseModel):
    """A route: its fallback list and the order a request would try now."""

    name: str
    strategy: str
    models: list[str] = Field(description="Configured priority order")
    order: list[str] = Field(description="Health-aware order an ordered request would try now")
    ready: bool = Field(description="At least one model's breaker is not open")
    default: bool


class ModelInfo(BaseModel):
    """A model: provider, health state and rank in each route."""

    name: str
    provider: str
    upstream_model: str
    state: str = Field(description="healthy, degraded, cooling_down, open, half_open or unknown")
    breaker: str
    ranks: dict[str, int] = Field(description="Route name → 1-based rank in it")
    context_window: int | None
    supports_tools: bool | None
    supports_vision: bool | None


class ModelList(BaseModel):
    """Every route and model the router serves."""

    default_route: str | None = Field(description="Where a chat without a model goes, if anywhere")
    routes: list[RouteInfo]
    models: list[ModelInfo]


class HealthResult(BaseModel):
    """Health detail per model, as in ``GET /health``."""

    status: str = Field(description='"ok", or "degraded" when some route has no usable model')
    models: dict[str, dict[str, Any]]


def model_list(door: FrontDoor, identity: Identity | None = None) -> ModelList:
    """Routes and models with health and rank, now (those ``identity`` may use)."""
    report = door.health(detailed=True)
    default = door.default_route
    visible = {o["id"]: o for o in door.model_objects(identity)}
    routes = [
        RouteInfo(
            name=name,
            strategy=r["strategy"],
            models=r["models"],
            order=r["order"],
            ready=r["ready"],
            default=name == default,
        )
        for name, r in report["routes"].items()
        if name in visible
    ]
    models = []
    for obj in visible.values():
        extra = obj["modelrouter"]
        if extra["kind"] != "model":
            continue
        snap = report["models"][obj["id"]]
        models.append(
            ModelInfo(
                name=obj["id"],
                provider=extra["provider"],
                upstream_model=extra["upstream_model"],
                state=snap["state"],
                breaker=snap["breaker"],
                ranks=snap["ranks"],
                context_window=extra["context_window"],
                supports_tools=extra["supports_tools"],
                supports_vision=extra["supports_vision"],
            )
        )
    return ModelList(default_route=default, routes=routes, models=models)


def route_detail(door: FrontDoor, name: str) -> dict[str, Any] | None:
    """One route with its members' health, or ``None`` if there is no such route."""
    report = door.health(detailed=True)
    route = report["routes"].get(name)
    if route is None:
        return None
    members = {m: report["models"][m] for m in route["models"]}
    default = name == door.default_route
    return {"name": name, "default": default, **route, "health": members}
