"""Run the real modelrouter app on a free 127.0.0.1 port for a test.

The server runs in a background thread with its own event loop, so both sync and
async clients (the ``openai`` SDK, the ``mcp`` SDK, plain httpx2) can talk to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from modelrouter.app import create_app
from modelrouter.config import LoadedConfig, parse
from modelrouter.http_protocol import uvicorn_http
from modelrouter.runtime import Runtime


class RunningRouter:
    """A live router: ``base_url`` for the OpenAI SDK, ``runtime`` for inspection."""

    def __init__(self, server: uvicorn.Server, runtime: Runtime, port: int) -> None:
        self.server = server
        self.runtime = runtime
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = self.url + "/v1"


def router_config(
    providers: dict[str, Any],
    models: dict[str, Any],
    routes: dict[str, Any],
    **sections: Any,
) -> LoadedConfig:
    """Build a validated config from plain dicts (quick retries for tests)."""
    router = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, **sections.pop("router", {})}
    health = {"probe": "none", **sections.pop("health", {})}
    # Port 0: the real port is only known after binding, so the MCP host check must
    # accept any port on loopback.
    server = {"port": 0, **sections.pop("server", {})}
    # No call log unless a test asks for one: tests must not leave a database behind.
    store = {"url": "none", **sections.pop("store", {})}
    data = {
        "providers": providers,
        "models": models,
        "routes": routes,
        "router": router,
        "health": health,
        "server": server,
        "store": store,
        **sections,
    }
    return parse(data, "test config")


@contextmanager
def run_router(
    config: LoadedConfig, *, port: int = 0, health_clock: Callable[[], float] | None = None
) -> Iterator[RunningRouter]:
    """Serve ``config`` on ``port`` (0: a free one) until the block ends."""
    app = create_app(config, health_clock=health_clock)
    runtime: Runtime = app.state.runtime
    # The protocol `modelrouter serve` uses, so every test reads requests as it does.
    http = uvicorn_http(config.settings.server)
    cfg = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        http=http,  # type: ignore[arg-type]  # a protocol factory: uvicorn only calls it
    )
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("router did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningRouter(server, runtime, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
