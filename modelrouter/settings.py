"""The typed shape of the configuration file (config.example.toml documents every key).

Only shapes and per-field rules live here; loading, interpolation, environment
overrides and cross-references are in :mod:`modelrouter.config`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    """``[server]``: where to listen and who may call."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: list[str] = []
    admin_keys: list[str] = []
    """Keys for ``/admin/*``; none = the admin surface is off (404)."""
    max_body_mb: float = Field(10, gt=0)
    drain_s: float = Field(30, ge=0, description="SIGTERM: how long in-flight requests may finish")
    log_bodies: bool = False
    """Log prompts and answers. Off by default: they may hold personal data."""

    # Who may call (modelrouter/api/guard.py) and how a request must arrive
    # (modelrouter/http_protocol.py).
    allowed_hosts: list[str] = []
    """Host values accepted besides the bound address (``name`` = any port, or
    ``name:port``), e.g. the name a reverse proxy forwards; ``"*"`` = any Host."""
    cors_origins: list[str] = []
    """Origins (``https://app.example``) whose pages may call the API from a browser;
    ``"*"`` = any origin, which turns the Origin check off."""
    header_timeout_s: float = Field(10, gt=0)
    """A request line and its headers must arrive within this long of their first byte
    (or of the connection opening)."""
    body_timeout_s: float = Field(60, gt=0)
    """A request body must arrive whole within this long of the end of its headers."""
    max_header_kb: int = Field(64, ge=1)
    """Request line plus headers larger than this get 431."""
    max_headers: int = Field(100, ge=1)
    """More request headers than this get 431."""

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        out = []
        for entry in (v.strip().lower() for v in value):
            # Entries are compared with the Host header: no scheme, no path.
            if entry and ("/" in entry or "@" in entry or any(c.isspace() for c in entry)):
                raise ValueError('each entry is a host name, "name:port" or "*" (no scheme)')
            if entry:
                out.append(entry)
        return out

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for entry in (v.strip().lower().rstrip("/") for v in value):
            scheme, sep, rest = entry.partition("://")
            bad = not sep or scheme not in ("http", "https") or not rest or "/" in rest
            # Browsers send an origin as scheme://host[:port], nothing more.
            if entry and entry != "*" and bad:
                raise ValueError('each entry is an origin such as "https://app.example" or "*"')
            if entry:
                out.append(entry)
        return out


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
    mode: Literal["chat", "embedding"] = "chat"
    """What the model serves: chat (every chat door) or embeddings (``/v1/embeddings``)."""


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


class StoreSettings(_Section):
    """``[store]``: where the call log and the usage roll-ups live (later keys and teams).

    ``url``: ``sqlite:///PATH`` (relative paths: next to the config file, else the
    working directory), ``postgresql://user:pass@host:5432/db``, or ``"none"``.
    """

    url: str = "sqlite:///modelrouter.db"
    retention_days: float = Field(30, gt=0)
    """Call-log rows older than this are deleted; hourly roll-ups are kept."""
    spool_dir: str = ""
    """Where records go while the store cannot take them; empty: ``PATH.spool`` next to
    a SQLite file, else ``modelrouter-spool`` next to the config file."""
    queue_size: int = Field(100_000, ge=100)
    """Records held in memory for the writer; past this, new records are dropped
    (and counted in ``/health``) — only when neither the store nor the spool keep up."""

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        # The message never repeats the value: a PostgreSQL URL may hold a password.
        head = url.split(":", 1)[0].lower()
        if url != "none" and head not in STORE_SCHEMES:
            raise ValueError(
                'must be "none", sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB'
            )
        if head.startswith("sqlite") and not url.split("://", 1)[-1].lstrip("/"):
            raise ValueError("sqlite:///PATH needs a file path")
        return url


STORE_SCHEMES = frozenset(
    {"sqlite", "sqlite+aiosqlite", "postgresql", "postgres", "postgresql+asyncpg"}
)
"""URL schemes ``store.url`` accepts."""


Period = Literal["day", "week", "month", "total"]
"""A budget period: a UTC calendar day, ISO week (from Monday), month, or all time."""


class LimitSettings(_Section):
    """What a team or a key may use (CONTRACT.md section 5); unset = no limit."""

    models: list[str] | None = None
    """Routes and models allowed (names or globs such as ``"gpt-*"``); absent = all."""
    rpm: int | None = Field(None, ge=0)
    """Requests per minute."""
    tpm: int | None = Field(None, ge=0)
    """Tokens (input + output) per minute."""
    budget_usd: float | None = Field(None, ge=0)
    """Spend cap per ``budget_period``."""
    budget_period: Period = "month"


class TeamSettings(LimitSettings):
    """``[teams.NAME]``: limits shared by every key of the team."""


class KeySettings(LimitSettings):
    """``[keys.NAME]``: a key declared in the config (read-only at run time)."""

    key: str
    """The secret the caller sends as ``Authorization: Bearer``."""
    team: str | None = None
    expires_at: str | None = None
    """A date (``2027-06-30``, the end of that UTC day) or an ISO UTC time."""
    metadata: dict[str, Any] = {}


class MetricsSettings(_Section):
    """``[metrics]``: the Prometheus endpoint."""

    require_key: bool = False
    """``GET /metrics`` needs an admin key."""


class ClusterSettings(_Section):
    """``[cluster]``: state shared by replicas through Redis (CONTRACT.md section 8)."""

    redis_url: str | None = None
    """Absent: every process keeps its own state."""
    on_redis_error: Literal["local", "deny"] = "local"
    """While Redis is unreachable: serve on per-process state, or refuse limited keys."""
    instance: str = ""
    """This replica's name in ``/health``, logs and metrics; empty: ``host:port``."""
    namespace: str = ""
    """Keys and channels live under ``modelrouter:v1:NAMESPACE:``: routers that share a
    Redis but must not share state (staging and production) take different ones."""

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        # The message never repeats the value: a Redis URL may hold a password.
        if url is not None and not url.strip():
            return None
        if url is not None and url.split(":", 1)[0].lower() not in ("redis", "rediss", "unix"):
            raise ValueError(
                "must be redis://[:PASSWORD@]HOST:PORT/DB, rediss://... or unix://PATH"
            )
        return url

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if value and not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError("letters, digits, '-', '_' and '.' only")
        return value


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
    store: StoreSettings = StoreSettings()
    teams: dict[str, TeamSettings] = {}
    keys: dict[str, KeySettings] = {}
    metrics: MetricsSettings = MetricsSettings()
    cluster: ClusterSettings = ClusterSettings()
