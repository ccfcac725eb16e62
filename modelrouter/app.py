"""``create_app(config)``: the Starlette application, its routes and its lifespan."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from modelrouter import config as config_mod
from modelrouter.api.admin import admin_routes
from modelrouter.api.admin_keys import admin_key_routes
from modelrouter.api.chat import chat_handler
from modelrouter.api.common import Handler, error_response, request_id
from modelrouter.api.embeddings import embeddings_handler
from modelrouter.api.guard import Guard
from modelrouter.api.health import health_handlers
from modelrouter.api.key_info import key_info_handler
from modelrouter.api.messages import MESSAGES_PREFIX, anthropic_error, messages_handlers
from modelrouter.api.models import models_handlers
from modelrouter.api.prompts import prompt_handler
from modelrouter.api.responses import responses_handler
from modelrouter.errors import RouterError
from modelrouter.frontdoor import FrontDoor
from modelrouter.governance.watch import KeyService
from modelrouter.mcp.server import build_mcp_server, mcp_http_app
from modelrouter.memory import tune_malloc
from modelrouter.runtime import Runtime
from modelrouter.settings import ServerSettings

CHAT_PATH = "/v1/chat/completions"


class RouterApp:
    """The ASGI app: the request guard, then chat completions straight to their handler
    and the rest to Starlette's router.

    Measured with ``python -m bench``: a framework's middleware stack and router cost
    about a tenth of the hot path's throughput, and the chat endpoint needs none of
    them (it reads the raw body and answers in OpenAI's error shape itself). The guard
    (:mod:`modelrouter.api.guard`) runs first for every route, the chat path included.
    """

    def __init__(self, app: Starlette, chat: Handler, server: ServerSettings) -> None:
        self.app = app
        self.chat = chat
        self.guard = Guard(self.route, server)

    @property
    def state(self) -> Any:
        """The app's state (``state.runtime`` is the :class:`Runtime`, ``state.door`` the
        :class:`FrontDoor`)."""
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answer = self.guard.check(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
            # Not through route(): one call layer less on the hot path.
            if scope["path"] == CHAT_PATH and scope["method"] == "POST":
                await self._chat(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch a request the guard let through (the app behind its CORS headers)."""
        if scope["path"] == CHAT_PATH and scope["method"] == "POST":
            await self._chat(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.chat(request)
        except Exception:
            err = RouterError(500, "Internal error in modelrouter.", type="server_error")
            response = error_response(err, request_id(request))
        await response(scope, receive, send)


def create_app(
    config: config_mod.LoadedConfig,
    *,
    health_clock: Callable[[], float] | None = None,
    tune_process: bool = False,
) -> RouterApp:
    """Build the app for one config; pools and probes open in its lifespan.

    ``tune_process`` is for the command that owns the process (``modelrouter serve``):
    glibc malloc settings, and the garbage collector told to leave everything built at
    start-up alone. Tests and applications embedding the app keep their own settings.
    """
    rt = Runtime(config, health_clock=health_clock)
    door = FrontDoor(rt)
    # Virtual keys: loaded from the store into the door's key directory, kept fresh.
    keys = KeyService(rt.settings, rt.calls.store, door.keys)
    mcp = build_mcp_server(door)
    mcp_app = mcp_http_app(mcp, door)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if tune_process:
            tune_malloc()
        await rt.start()  # opens (and on SQLite upgrades) the store first
        await keys.start()
        await door.start()  # the limiter: budgets read from the store from here on
        if tune_process:
            # Everything built so far lives until shutdown: out of the collector's way.
            # Full collections over these objects caused the p99 spikes under load.
            gc.collect()
            gc.freeze()
        try:
            # Starlette never runs a sub-app's lifespan: the MCP session manager runs here.
            async with mcp.session_manager.run():
                yield
        finally:
            await door.aclose()
            await keys.aclose()
            await rt.aclose()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        err = RouterError(exc.status_code, str(exc.detail), code=code)
        anthropic = request.scope["path"].startswith(MESSAGES_PREFIX)
        return (anthropic_error if anthropic else error_response)(err, request_id(request))

    async def crash(request: Request, exc: Exception) -> Response:
        err = RouterError(500, "Internal error in modelrouter.", type="server_error")
        return error_response(err, request_id(request))

    app = Starlette(
        lifespan=lifespan, exception_handlers={HTTPException: http_error, Exception: crash}
    )
    app.state.runtime = rt
    app.state.door = door
    app.state.keys = keys
    max_body_mb = rt.settings.server.max_body_mb
    list_models, get_model = models_handlers(door)
    healthz, readyz, health = health_handlers(door)
    # Plain routes: no dependency injection or body models on the hot path.
    chat = chat_handler(door, max_body_mb)
    app.router.add_route(CHAT_PATH, chat, methods=["POST"])
    app.router.add_route("/v1/models", list_models, methods=["GET"])
    app.router.add_route("/v1/models/{model_id:path}", get_model, methods=["GET"])
    app.router.add_route("/healthz", healthz, methods=["GET"])
    app.router.add_route("/readyz", readyz, methods=["GET"])
    app.router.add_route("/health", health, methods=["GET"])
    app.router.add_route("/v1/prompts/{name}", prompt_handler(door, max_body_mb), methods=["POST"])
    # The doors of other APIs (CONTRACT.md §9): modelrouter/api/messages.py and beside it.
    messages, count_tokens = messages_handlers(door, max_body_mb)
    app.router.add_route("/v1/messages", messages, methods=["POST"])
    app.router.add_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
    app.router.add_route("/v1/embeddings", embeddings_handler(door, max_body_mb), methods=["POST"])
    app.router.add_route("/v1/responses", responses_handler(door, max_body_mb), methods=["POST"])
    app.router.add_route("/v1/key", key_info_handler(door, keys), methods=["GET"])
    app.router.routes.extend(admin_routes(door.call_log, rt.settings.server.admin_keys))
    app.router.routes.extend(admin_key_routes(keys, rt.settings.server.admin_keys, max_body_mb))
    # The MCP app (its own auth and Host checks) as an exact route, not a "/" mount,
    # so /mcp never redirects and unknown paths keep the OpenAI-shaped 404.
    app.router.routes.append(Route("/mcp", mcp_app))

    return RouterApp(app, chat, rt.settings.server)


def factory() -> RouterApp:
    """Entry point for ``uvicorn --factory`` and ``--workers``: config from the environment."""
    cfg = config_mod.load(os.environ.get("MODELROUTER_CONFIG") or None)
    return create_app(cfg, tune_process=True)
