"""The typed shape of the configuration file (see CONTRACT.md section 1).

Only shapes and per-field rules live here; loading, interpolation, environment
overrides and cross-references are in :mod:`modelrouter.config`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    """``[server]``: where to listen and who may call."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: list[str] = []
    max_body_mb: float = Field(10, gt=0)
    drain_s: float = Field(30, ge=0, description="SIGTERM: how long in-flight requests may finish")
    log_bodies: bool = False
    """Log prompts and answers. Off by default: they may hold personal data."""


class RouterSettings(_Section):
    """``[router]``: fallback, retries and deadlines."""

    default_route: str = "default"
    retries_per_model: int = Field(1, ge=0, le=10)
    max_attempts: int = Field(6, ge=1, le=100)
    request_timeout_s: float = Field(600, gt=0)
    connect_timeout_s: float = Field(5, gt=0)
    first_token_timeout_s: float = Field(30, gt=0)
    idle_timeout_s: float = Field(60, gt=0)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(8, ge=0)
    retry_after_max_s: float = Field(5, ge=0)
    """A 429 whose Retry-After is at most this is retried on the same model."""


class HealthSettings(_Section):
    """``[health]``: probes, breakers and slow start."""

    probe: Literal["models", "chat", "none"] = "models"
    interval_s: float = Field(30, gt=0)
    timeout_s: float = Field(5, gt=0)
    failure_threshold: int = Field(3, ge=1)
    error_rate_threshold: float = Field(0.5, gt=0, le=1)
    window_s: float = Field(60, gt=0)
    min_requests: int = Field(10, ge=1)
    open_s: float = Field(30, ge=0)
    slow_start_s: float = Field(30, ge=0)


class ModelSettings(_Section):
    """``[models.NAME]``: one upstream model and the facts routing uses."""

    provider: str
    model: str | None = None
    context_window: int | None = Field(None, gt=0)
    supports_tools: bool | None = None
    supports_vision: bool | None = None
    input_cost_per_mtok: float | None = Field(None, ge=0)
    output_cost_per_mtok: float | None = Field(None, ge=0)
    weight: float = Field(1.0, gt=0)
    """Share of traffic under ``strategy = "weighted"``."""
    options: dict[str, Any] = {}
    """Provider-specific per-model options (e.g. the simulated provider's reply)."""
    cached_input_cost_per_mtok: float | None = Field(None, ge=0)
    """USD per million prompt tokens read from the upstream's prompt cache; unset: the
    catalogue's cached price if the input price is the catalogue's too, else the input
    price (see :mod:`modelrouter.cost`)."""


class RouteSettings(_Section):
    """``[routes.NAME]``: a priority-ordered fallback list."""

    models: list[str] = Field(min_length=1)
    strategy: Literal["ordered", "weighted", "latency"] = "ordered"


class PromptSettings(_Section):
    """``[prompts.NAME]``: a template that becomes an API and an MCP prompt."""

    description: str = ""
    route: str | None = None
    system: str | None = None
    template: str


class Settings(_Section):
    """The whole configuration file."""

    server: ServerSettings = ServerSettings()
    router: RouterSettings = RouterSettings()
    health: HealthSettings = HealthSettings()
    providers: dict[str, dict[str, Any]] = {}
    """Raw provider tables; each is validated by its kind's options model."""
    models: dict[str, ModelSettings] = {}
    routes: dict[str, RouteSettings] = {}
    prompts: dict[str, PromptSettings] = {}
