"""The MCP server: tools, resources and prompts over the router's runtime.

:func:`build_mcp_server` makes one :class:`MCPServer` per runtime; the HTTP app
routes ``/mcp`` to :func:`mcp_http_app` (Streamable HTTP) and ``modelrouter mcp``
serves the same server over stdio (:mod:`modelrouter.mcp_stdio`).

Security of ``/mcp``:

* Bearer keys: ``server.api_keys`` checked by the SDK's token verifier (401 without
  a valid key); an empty list means no auth, as for ``/v1``.
* Host and Origin checks (DNS-rebinding protection): only the configured
  ``server.host:port`` is accepted, plus ``localhost`` and ``[::1]`` when bound to
  loopback, plus ``server.allowed_hosts``; pages from ``server.cors_origins`` too.
  Port 0 (the OS picks one) accepts any port of those hosts. Bound to a wildcard
  address (``0.0.0.0``, ``::``) without ``allowed_hosts`` the names clients will use
  are unknowable, so the Host check is off and bearer keys are the protection (put a
  proxy that checks Host in front if the server has no keys). The request guard in
  front of every route (:mod:`modelrouter.api.guard`) applies the same rules first;
  this is the SDK's own copy of them.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import Message, Prompt, PromptArgument, UserMessage
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, InputRequiredResult
from pydantic import Field
from starlette.applications import Starlette

from modelrouter import __version__
from modelrouter.api.guard import host_rules, url_host
from modelrouter.api.health import health_report
from modelrouter.errors import RouterError
from modelrouter.mcp_models import model_list, route_detail
from modelrouter.mcp_tools import register_tools
from modelrouter.prompts import check_variables, fill, prompt_variables
from modelrouter.runtime import Runtime
from modelrouter.settings import PromptSettings, ServerSettings

INSTRUCTIONS = (
    "modelrouter routes chat requests to LLMs with health-aware fallback. Use 'chat' to "
    "ask a route or model, 'compare' to ask several models at once, 'list_models' to see "
    "what exists and 'model_health' for health detail."
)


class ApiKeyVerifier:
    """A :class:`mcp.server.auth.provider.TokenVerifier` for static bearer keys."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys]

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's grant if it equals one of the keys (constant time), else ``None``."""
        given = token.encode()
        ok = False
        for key in self._keys:
            # Compare against every key, so timing says nothing about which one matched.
            ok |= hmac.compare_digest(given, key)
        return AccessToken(token=token, client_id="api-key", scopes=[]) if ok else None


def transport_security(server: ServerSettings) -> TransportSecuritySettings:
    """Host and Origin checks for the configured address (see the module docstring).

    The same rules as the request guard in front of every route
    (:func:`modelrouter.api.guard.host_rules`), in the SDK's notation.
    """
    rules = host_rules(server)
    if not rules.check or "*" in server.cors_origins:
        # The SDK cannot express these; the guard in front still checks what applies.
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"http://{h}" for h in rules.patterns]
    # Names from allowed_hosts are often behind a TLS proxy.
    origins += [f"https://{h}" for h in rules.extra]
    origins += server.cors_origins
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(rules.patterns),
        allowed_origins=origins,
    )


class ConfigPrompt(Prompt):
    """An MCP prompt made from ``[prompts.NAME]``; its arguments are the template variables.

    Every argument is required. Missing and unknown arguments are both refused with
    an invalid-params error that names them (the SDK's own check would answer an
    internal error for a missing one).
    """

    settings: PromptSettings = Field(exclude=True)

    @classmethod
    def of(cls, name: str, prompt: PromptSettings) -> ConfigPrompt:
        """Build the MCP prompt for one configured prompt."""

        async def render(**arguments: Any) -> list[Message]:
            values = check_variables(name, prompt, arguments)
            text = fill(prompt.template, values)
            if prompt.system:
                # MCP prompt messages have no system role: the instructions lead the message.
                text = fill(prompt.system, values) + "\n\n" + text
            return [UserMessage(text)]

        route = prompt.route or "the default route"
        return cls(
            name=name,
            description=prompt.description or f"Prompt {name!r} (runs on {route})",
            arguments=[
                PromptArgument(name=v, description=f"fills {{{v}}}", required=True)
                for v in prompt_variables(prompt)
            ],
            fn=render,
            settings=prompt,
        )

    async def render(
        self, arguments: dict[str, Any] | None, context: Any
    ) -> list[Message] | InputRequiredResult:
        """Check the arguments, then render as the SDK does."""
        try:
            check_variables(self.name, self.settings, arguments or {})
        except RouterError as err:
            raise MCPError(INVALID_PARAMS, err.message) from None
        return await super().render(arguments, context)


def register_resources(mcp: MCPServer[Any], rt: Runtime) -> None:
    """``modelrouter://models``, ``modelrouter://health``, ``modelrouter://routes/{name}``."""

    @mcp.resource(
        "modelrouter://models",
        name="models",
        mime_type="application/json",
        description="Routes and models with health state and rank",
    )
    async def models_resource() -> str:
        return model_list(rt).model_dump_json()

    @mcp.resource(
        "modelrouter://health",
        name="health",
        mime_type="application/json",
        description="Every model's health and rank in each route (as GET /health)",
    )
    async def health_resource() -> str:
        return orjson.dumps(health_report(rt)).decode()

    @mcp.resource(
        "modelrouter://routes/{name}",
        name="route",
        mime_type="application/json",
        description="One route: its models, current order, readiness and members' health",
    )
    async def route_resource(name: str) -> str:
        detail = route_detail(rt, name)
        if detail is None:
            known = ", ".join(rt.registry.routes) or "none"
            raise ResourceNotFoundError(f"No route {name!r} (routes: {known})")
        return orjson.dumps(detail).decode()


def build_mcp_server(rt: Runtime, *, auth: bool = True) -> MCPServer[Any]:
    """The MCP server for one runtime; ``auth`` adds bearer keys (HTTP only)."""
    server = rt.settings.server
    keys = server.api_keys if auth else []
    verifier = ApiKeyVerifier(keys) if keys else None
    settings = None
    if verifier is not None:
        issuer = f"http://{url_host(server.host)}:{server.port or 80}"
        settings = AuthSettings(issuer_url=issuer, resource_server_url=None)
    mcp: MCPServer[Any] = MCPServer(
        "modelrouter",
        title="modelrouter",
        instructions=INSTRUCTIONS,
        version=__version__,
        token_verifier=verifier,
        auth=settings,
        log_level="WARNING",
    )
    register_tools(mcp, rt)
    register_resources(mcp, rt)
    for name, prompt in rt.settings.prompts.items():
        mcp.add_prompt(ConfigPrompt.of(name, prompt))
    return mcp


def mcp_http_app(mcp: MCPServer[Any], server: ServerSettings) -> Starlette:
    """The Streamable HTTP app answering at ``/mcp``; give it a ``Route("/mcp", ...)``.

    The app matches the path ``/mcp`` itself, so it must see the full path: an exact
    route keeps it (a ``Mount("/mcp")`` would strip it and answer 307).

    Stateless (any worker answers any request, so ``--workers N`` needs no sticky
    sessions) with SSE responses, so progress notifications still reach the client.
    """
    return mcp.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=False,
        stateless_http=True,
        transport_security=transport_security(server),
    )
