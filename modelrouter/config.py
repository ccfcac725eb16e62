"""Load the configuration: TOML file → ``${VAR}`` expansion → env overrides → typed settings.

Every problem is reported as a :class:`ConfigError` whose lines each start with the
key path (``routes.default.models[1]: ...``). Messages never include a value read
from the file or the environment, so a secret cannot leak through an error.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from modelrouter.governance.directory import parse_expiry
from modelrouter.settings import Settings
from providers import KINDS, options_model_for
from providers.base import ProviderOptions
from providers.embeddings import embeds
from providers.openai import OpenAIOptions
from providers.presets import PRESETS
from providers.upstream import EnvKeyOptions

ENV_PREFIX = "MODELROUTER_"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class ConfigError(Exception):
    """An invalid configuration; ``problems`` holds one ``"key.path: what"`` line each."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"invalid config {source}".rstrip()
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """Validated settings plus each provider's validated options and where they came from."""

    settings: Settings
    providers: dict[str, ProviderOptions]
    source: str
    """The file path, or ``"built-in demo config"``."""
    is_demo: bool = False
    warnings: tuple[str, ...] = ()
    """Start-up notices about a config that is valid but probably not meant (see
    :func:`startup_warnings`); never a value from the file or the environment."""
    directory: str | None = None
    """The config file's directory (relative store paths start there); ``None``: the
    working directory."""


def key_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """Render a pydantic location as ``a.b[1].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def expand_vars(
    value: Any, env: Mapping[str, str], path: tuple[int | str, ...], problems: list[str]
) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a TOML tree."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{key_path(path)}: environment variable {name} is not set")
            return ""

        return _VAR.sub(sub, value) if "${" in value else value
    if isinstance(value, dict):
        return {k: expand_vars(v, env, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, env, (*path, i), problems) for i, v in enumerate(value)]
    return value


def _settings_class(file_data: dict[str, Any]) -> type[BaseSettings]:
    """A pydantic-settings class whose sources are: env overrides, then the file."""

    class _Loader(BaseSettings, Settings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (env_settings, init_settings)

    return _Loader


def _validation_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors(include_input=False, include_url=False):
        problems.append(f"{key_path(e['loc'])}: {e['msg']}")
    return problems


def _check_references(s: Settings, problems: list[str]) -> None:
    for name, model in s.models.items():
        if model.provider not in s.providers:
            problems.append(f"models.{name}.provider: unknown provider {model.provider!r}")
    for name, route in s.routes.items():
        if name in s.models:
            problems.append(f"routes.{name}: a model has the same name; names must be unique")
        seen: set[str] = set()
        for i, m in enumerate(route.models):
            if m not in s.models:
                problems.append(f"routes.{name}.models[{i}]: unknown model {m!r}")
            elif m in seen:
                problems.append(f"routes.{name}.models[{i}]: {m!r} is listed twice")
            seen.add(m)
        _check_route_mode(name, route.models, s, problems)
    default = s.router.default_route
    # Unset and no route named "default": requests must name a model (a 400 says so).
    explicit = "default_route" in s.router.model_fields_set
    if explicit and default not in s.routes and default not in s.models:
        problems.append(f"router.default_route: unknown route or model {default!r}")
    for name, prompt in s.prompts.items():
        if prompt.route is not None and prompt.route not in s.routes | s.models:
            problems.append(f"prompts.{name}.route: unknown route or model {prompt.route!r}")
        elif prompt.route is not None and _mode_of(prompt.route, s) == "embedding":
            problems.append(f"prompts.{name}.route: {prompt.route!r} serves embeddings, not chat")
    _check_keys(s, problems)
    _check_cluster(s, problems)


def _check_cluster(s: Settings, problems: list[str]) -> None:
    """Replicas share one store: a SQLite file cannot be it."""
    store = s.store.url.split(":", 1)[0].lower()
    if s.cluster.redis_url and store.startswith("sqlite"):
        problems.append(
            "store.url: several replicas (cluster.redis_url is set) cannot share a SQLite "
            'file; use a PostgreSQL store (postgresql://USER:PASSWORD@HOST:5432/DB) or "none"'
        )


def _check_keys(s: Settings, problems: list[str]) -> None:
    secrets: dict[str, str] = {}
    for k in s.server.api_keys:
        secrets.setdefault(k, "server.api_keys")
    for name, key in s.keys.items():
        path = f"keys.{name}"
        if not key.key:
            problems.append(f"{path}.key: is empty")
        elif key.key in secrets:
            # Never print the secret: name where else it is used.
            problems.append(f"{path}.key: the same secret as {secrets[key.key]}")
        else:
            secrets[key.key] = path
        if key.team is not None and key.team not in s.teams:
            problems.append(f"{path}.team: unknown team {key.team!r}")
        if key.expires_at is not None:
            try:
                parse_expiry(key.expires_at)
            except ValueError:
                problems.append(f"{path}.expires_at: not a date (2027-06-30) or ISO time")


def _mode_of(name: str, s: Settings) -> str:
    """The mode of a model, or of a route's first model."""
    route = s.routes.get(name)
    first = route.models[0] if route is not None else name
    model = s.models.get(first)
    return model.mode if model is not None else "chat"


_A_MODE = {"chat": "a chat model", "embedding": "an embedding model"}


def _check_route_mode(name: str, models: list[str], s: Settings, problems: list[str]) -> None:
    """A route serves one mode: its first model's."""
    known = [m for m in models if m in s.models]
    if not known:
        return
    mode = s.models[known[0]].mode
    for i, m in enumerate(models):
        if m in s.models and s.models[m].mode != mode:
            problems.append(
                f"routes.{name}.models[{i}]: {m!r} is {_A_MODE[s.models[m].mode]} and "
                f"{known[0]!r} {_A_MODE[mode]}; a route mixes only one mode"
            )


def _check_embedders(
    s: Settings, providers: dict[str, ProviderOptions], problems: list[str]
) -> None:
    """Every ``mode = "embedding"`` model's provider kind must serve embeddings."""
    for name, model in s.models.items():
        options = providers.get(model.provider)
        if model.mode == "embedding" and options is not None:
            cls = KINDS.get(options.kind)
            if cls is not None and not embeds(cls):
                problems.append(
                    f"models.{name}.mode: provider kind {options.kind!r} serves no embeddings"
                )


def _validate_providers(raw_providers: Any, problems: list[str]) -> dict[str, ProviderOptions]:
    out: dict[str, ProviderOptions] = {}
    if not isinstance(raw_providers, dict):
        return out  # the settings model reports the wrong type
    for name, raw in raw_providers.items():
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if not isinstance(kind, str):
            problems.append(f"providers.{name}.kind: field required (a provider kind)")
            continue
        model = options_model_for(kind)
        if model is None:
            problems.append(f"providers.{name}.kind: unknown provider kind {kind!r}")
            continue
        try:
            out[name] = model.model_validate(raw)
        except ValidationError as err:
            problems.extend(f"providers.{name}.{p}" for p in _validation_problems(err))
    return out


def parse(data: dict[str, Any], source: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate an already-read TOML tree; raise :class:`ConfigError` with every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    expanded = expand_vars(data, env, (), problems)
    if problems:
        raise ConfigError(problems, source)
    try:
        loaded = _settings_class(expanded)(**expanded)
    except ValidationError as err:
        problems = _validation_problems(err)
        _validate_providers(expanded.get("providers", {}), problems)
        raise ConfigError(problems, source) from None
    # Only what was given (file or environment): defaults are filled in again, and
    # `model_fields_set` keeps telling a given value from a default.
    settings = Settings.model_validate(loaded.model_dump(exclude_unset=True))
    # An unset ``${KEY:-}`` leaves an empty string: that is "no key", not a key.
    settings.server.api_keys = [k for k in settings.server.api_keys if k]
    settings.server.admin_keys = [k for k in settings.server.admin_keys if k]
    providers = _validate_providers(settings.providers, problems)
    _check_references(settings, problems)
    _check_embedders(settings, providers, problems)
    if problems:
        raise ConfigError(problems, source)
    raw = data.get("providers")
    warnings = key_warnings(raw if isinstance(raw, dict) else {}, providers)
    return LoadedConfig(settings=settings, providers=providers, source=source, warnings=warnings)


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate a TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(["(file): not found"], str(p)) from None
    except OSError as err:
        raise ConfigError([f"(file): cannot read: {err.strerror}"], str(p)) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"(syntax): {err}"], str(p)) from None
    cfg = parse(data, str(p), env)
    return dataclasses.replace(cfg, directory=str(p.resolve().parent))


def load_demo(env: Mapping[str, str] | None = None) -> LoadedConfig:
    """The built-in demo config: simulated models only, one of them flaky."""
    text = resources.files("modelrouter").joinpath("demo.toml").read_text(encoding="utf-8")
    cfg = parse(tomllib.loads(text), "built-in demo config", env)
    return dataclasses.replace(cfg, is_demo=True)


def find_config(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """``--config``, else ``$MODELROUTER_CONFIG``, else ``./modelrouter.toml`` if present."""
    env = os.environ if env is None else env
    if explicit:
        return explicit
    if env.get("MODELROUTER_CONFIG"):
        return env["MODELROUTER_CONFIG"]
    return "modelrouter.toml" if Path("modelrouter.toml").is_file() else None


def load(explicit: str | None = None, *, allow_demo: bool = True) -> LoadedConfig:
    """Find and load the config; fall back to the demo config when none exists."""
    path = find_config(explicit)
    if path is None:
        if not allow_demo:
            raise ConfigError(["(file): no config given and ./modelrouter.toml does not exist"])
        return load_demo()
    return load_file(path)


def warn(message: str) -> None:
    """Print a start-up notice on stderr (stdout may carry MCP)."""
    print(f"modelrouter: {message}", file=sys.stderr, flush=True)


# --- start-up warnings -------------------------------------------------------------------

HOSTED_OPENAI_HOSTS = frozenset(
    {"api.openai.com"} | {urlsplit(p.base_url).hostname or "" for p in PRESETS if p.hosted}
)
"""Hosts of OpenAI-compatible APIs that refuse a call without a key."""
_AUTH_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key"})
_THIS_MACHINE = frozenset({"localhost", "0.0.0.0", "::", ""})


def _needs_key(options: ProviderOptions) -> bool:
    """Whether the upstream refuses calls without a key (a hosted API)."""
    if any(h.lower() in _AUTH_HEADERS for h in options.headers):
        return False  # the credential travels in a header the config sets itself
    if isinstance(options, EnvKeyOptions):
        return type(options).key_required
    if type(options) is OpenAIOptions:
        return (urlsplit(options.base_url or "").hostname or "") in HOSTED_OPENAI_HOSTS
    return False


def key_warnings(
    raw: Mapping[str, Any], providers: Mapping[str, ProviderOptions]
) -> tuple[str, ...]:
    """One line per provider of a hosted API that has no key after ``${VAR:-}`` expansion.

    ``api_key = "${OPENAI_API_KEY:-}"`` with the variable unset is valid (an empty key
    means "no key"), so the server would start and every call would be refused. Named
    here: the provider, the variable and the host, never a value.
    """
    out: list[str] = []
    for name, options in providers.items():
        if options.api_key or not _needs_key(options):
            continue
        table = raw.get(name)
        given = table.get("api_key") if isinstance(table, dict) else None
        host = urlsplit(options.base_url or "").hostname or options.kind
        names = [var for var, _ in _VAR.findall(given)] if isinstance(given, str) else []
        if names:
            why = f"api_key is empty ({', '.join('$' + v for v in names)} unset or empty)"
            fix = f'set it, or write "${{{names[0]}}}" to make a missing key a config error'
        else:
            why = "api_key is empty" if given is not None else "no api_key"
            fix = 'give one, e.g. api_key = "${VAR}"'
        out.append(
            f"providers.{name}: {why}: calls to {host} go without a key and will be refused ({fix})"
        )
    return tuple(out)


def _host_key(host: str) -> str:
    """A host name as compared for loops: lower case, no IPv6 brackets, loopback unified."""
    host = host.strip().lower().strip("[]")
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "localhost"
    except ValueError:
        pass
    return "localhost" if host in _THIS_MACHINE else host


def loop_warnings(cfg: LoadedConfig) -> tuple[str, ...]:
    """One line per provider whose ``base_url`` is the router's own ``[server]`` address.

    The llamacpp preset defaults to ``http://localhost:8080/v1``, which is also where the
    router listens by default: such a router would send requests to itself. Bound to a
    wildcard address the router answers on every local name, so ``localhost`` and the
    loopback and wildcard addresses all count as its own.
    """
    server = cfg.settings.server
    if server.port == 0:
        return ()  # the OS picks the port: nothing to compare with
    ours = _host_key(server.host)
    out: list[str] = []
    for name, options in cfg.providers.items():
        url = urlsplit(options.base_url or "")
        if not url.hostname:
            continue
        try:
            port = url.port or {"http": 80, "https": 443}.get(url.scheme)
        except ValueError:
            continue  # a malformed port: the provider reports it when it is called
        if port == server.port and _host_key(url.hostname) == ours:
            out.append(
                f"providers.{name}.base_url points at this router's own address "
                f"({url.hostname}:{port}, [server] listens on {server.host}:{server.port}): "
                "the router would call itself; change the port of one of them"
            )
    return tuple(out)


def startup_warnings(cfg: LoadedConfig) -> tuple[str, ...]:
    """What ``check``, ``serve`` and ``mcp`` print on stderr before they start."""
    return (*cfg.warnings, *loop_warnings(cfg))
