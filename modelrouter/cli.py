"""The ``modelrouter`` command: serve, mcp, check, models, status (and, in
:mod:`modelrouter.cli_store`, logs, usage and db; in :mod:`modelrouter.cli_keys`, keys)."""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from modelrouter import __version__
from modelrouter import config as config_mod
from modelrouter.catalog import catalog
from modelrouter.cli_keys import add_key_commands
from modelrouter.cli_store import add_commands, preflight
from modelrouter.config import ConfigError, LoadedConfig
from modelrouter.cost import prices_for
from modelrouter.registry import with_default_facts

DESCRIPTION = (
    "modelrouter: a health-aware LLM router. One OpenAI-compatible endpoint and one MCP "
    "server in front of many models, with ordered fallback."
)
EPILOG = (
    "The config is found at --config PATH, else $MODELROUTER_CONFIG, else "
    "./modelrouter.toml; without one, every command uses the built-in demo config. "
    "MODELROUTER_SECTION__KEY=value overrides a key "
    "(e.g. MODELROUTER_SERVER__PORT=9000)."
)


def load_or_exit(path: str | None, *, allow_demo: bool = True) -> LoadedConfig:
    """Load the config or exit 2 printing every problem (never a value)."""
    try:
        cfg = config_mod.load(path, allow_demo=allow_demo)
    except ConfigError as err:
        print(f"modelrouter: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return cfg


def _warn_startup(cfg: LoadedConfig) -> None:
    """Print the config's start-up warnings (keys that expand to nothing, self-calls)."""
    for line in config_mod.startup_warnings(cfg):
        config_mod.warn(f"warning: {line}")


def version() -> str:
    """The installed package's version, else the source tree's."""
    try:
        return metadata.version("modelrouter")
    except metadata.PackageNotFoundError:
        return __version__


_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str) -> str:
    """Docstring text as a terminal shows it: reStructuredText roles and literals unwrapped."""
    return _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(r"\1", text))


def _about(func: Callable[..., Any]) -> str:
    return plain(inspect.getdoc(func) or "")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def routes_table(cfg: LoadedConfig) -> str:
    """The resolved routes: each route's models in priority order with their providers."""
    s = cfg.settings
    rows = [["ROUTE", "STRATEGY", "#", "MODEL", "PROVIDER", "KIND", "UPSTREAM MODEL"]]
    for route, r in s.routes.items():
        for i, m in enumerate(r.models, 1):
            model = s.models[m]
            kind = cfg.providers[model.provider].kind
            rows.append(
                [
                    route if i == 1 else "",
                    r.strategy if i == 1 else "",
                    str(i),
                    m,
                    model.provider,
                    kind,
                    model.model or m,
                ]
            )
    default = s.router.default_route
    return _table(rows) + f"\n\ndefault route: {default}"


def _price(v: float | None) -> str:
    return "?" if v is None else f"{v:g}"


def models_table(cfg: LoadedConfig) -> str:
    """Every model with its provider, capability facts and prices (USD per million tokens).

    Facts and prices the config leaves out come from the built-in catalogue (then, for
    facts, the provider kind's defaults); ``?`` is unknown. PRICES says where the
    prices came from.
    """
    s = cfg.settings
    facts = ["CONTEXT", "TOOLS", "VISION"]
    prices = ["IN $/M", "OUT $/M", "CACHED $/M", "PRICES"]
    rows = [["MODEL", "PROVIDER", "KIND", "UPSTREAM MODEL", *facts, *prices]]

    def fact(v: object) -> str:
        return "?" if v is None else ("yes" if v is True else "no" if v is False else str(v))

    for name, m in s.models.items():
        opts = cfg.providers[m.provider]
        upstream = m.model or name
        m = with_default_facts(m, opts.kind, upstream=upstream, base_url=opts.base_url)
        p = prices_for(m, upstream, opts.base_url)
        rows.append(
            [
                name,
                m.provider,
                opts.kind,
                upstream,
                fact(m.context_window),
                fact(m.supports_tools),
                fact(m.supports_vision),
                _price(p.input),
                _price(p.output),
                _price(p.cached_input),
                p.source,
            ]
        )
    note = (
        f"\nfacts and prices not in the config: built-in catalogue of {catalog().as_of} "
        "(list prices; config values win)"
    )
    return _table(rows) + note


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the config and print the resolved routes and models."""
    cfg = load_or_exit(args.config)
    _warn_startup(cfg)
    print(f"config: {cfg.source}")
    print(f"listen: {cfg.settings.server.host}:{cfg.settings.server.port}")
    print(f"auth: {len(cfg.settings.server.api_keys)} API key(s)")
    print()
    print(routes_table(cfg))
    print()
    print(models_table(cfg))
    print("\nconfig OK")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Print routes and models."""
    cfg = load_or_exit(args.config)
    print(models_table(cfg))
    print()
    print(routes_table(cfg))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP server (OpenAI API and MCP) with uvicorn."""
    import uvicorn

    from modelrouter.http_protocol import uvicorn_http

    cfg = load_or_exit(args.config)
    server = cfg.settings.server
    host = args.host or server.host
    port = args.port if args.port is not None else server.port
    server.host, server.port = host, port
    # Worker processes load the config themselves; the environment carries the overrides.
    os.environ["MODELROUTER_SERVER__HOST"] = host
    os.environ["MODELROUTER_SERVER__PORT"] = str(port)
    if cfg.is_demo:
        config_mod.warn(
            "no config found (--config, $MODELROUTER_CONFIG, ./modelrouter.toml): "
            "serving the built-in demo config of simulated models"
        )
    if not server.api_keys:
        config_mod.warn("server.api_keys is empty: the API accepts requests without a key")
    _warn_startup(cfg)
    code = preflight(cfg)
    if code is not None:
        return code
    config_mod.warn(
        f"serving {cfg.source} on http://{host}:{port}/v1 "
        f"(OpenAI API) and http://{host}:{port}/mcp (MCP)"
    )
    common: dict[str, Any] = dict(
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(server.drain_s) or None,
        loop="auto",
        # uvicorn's httptools protocol plus limits on reading a request (http_protocol.py).
        http=uvicorn_http(server),
    )
    if args.workers > 1:
        # Each worker process builds its own app from the same config file.
        if not cfg.is_demo:
            os.environ["MODELROUTER_CONFIG"] = os.path.abspath(cfg.source)
        uvicorn.run("modelrouter.app:factory", factory=True, workers=args.workers, **common)
        return 0
    from modelrouter.app import create_app

    uvicorn.run(create_app(cfg, tune_process=True), **common)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve MCP over stdio."""
    from modelrouter.mcp.stdio import run_stdio

    cfg = load_or_exit(args.config)
    _warn_startup(cfg)
    run_stdio(cfg)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print a running server's health as a table.

    The server is ``--url``, else the address ``serve`` would listen on: the config's
    ``[server]`` host and port (``--config``, environment overrides such as
    ``MODELROUTER_SERVER__PORT``), with ``--host`` and ``--port`` winning. The key is
    ``--api-key``, else ``$MODELROUTER_API_KEY``, else (for the config's own server only)
    the config's first ``server.api_keys`` entry.
    """
    from modelrouter.status import print_status, server_url

    key = args.api_key or os.environ.get("MODELROUTER_API_KEY")
    url = args.url
    if url is None:
        cfg = load_or_exit(args.config)
        url = server_url(cfg.settings.server, args.host, args.port)
        if url is None:
            print("modelrouter: [server] port is 0 (any free port): pass --url", file=sys.stderr)
            return 2
        key = key or next(iter(cfg.settings.server.api_keys), None)
    return print_status(url, key)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="modelrouter", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"modelrouter {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, func: Callable[[argparse.Namespace], int]) -> Any:
        sp = sub.add_parser(name, help=summary, description=_about(func))
        sp.add_argument(
            "--config",
            help="TOML config (default: $MODELROUTER_CONFIG, "
            "./modelrouter.toml, else the built-in demo)",
        )
        sp.set_defaults(func=func)
        return sp

    serve = command("serve", "run the HTTP server (OpenAI API and MCP)", cmd_serve)
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    command("mcp", "serve MCP over stdio", cmd_mcp)
    add_commands(command, load_or_exit)
    add_key_commands(command, load_or_exit)
    command("check", "validate the config and print the resolved routes", cmd_check)
    command("models", "list routes and models", cmd_models)
    status = command("status", "a running server's health as a table", cmd_status)
    status.add_argument(
        "--url", help="server base URL (default: http://HOST:PORT from the config's [server])"
    )
    status.add_argument("--host", help="server host (default: server.host)")
    status.add_argument("--port", type=int, help="server port (default: server.port)")
    status.add_argument(
        "--api-key",
        help="bearer key (default: $MODELROUTER_API_KEY, else the config's first api key)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
