"""The MCP server: tools, resources and prompts over the router's runtime.

:func:`build_mcp_server` makes one :class:`MCPServer` per runtime; the HTTP app
routes ``/mcp`` to :func:`mcp_http_app` (Streamable HTTP) and ``modelrouter mcp``
serves the same server over stdio (:mod:`modelrouter.mcp.stdio`).

Security of ``/mcp``:

* Bearer keys: ``server.api_keys``; an empty list means no auth, as for ``/v1``. A
  request without a valid key gets a 401 with an RFC 6750 challenge
  (``WWW-Authenticate: Bearer realm="modelrouter"``, plus ``error="invalid_token"`` when
  a wrong key was sent) and a body saying which header to send (:class:`BearerGate`).
  There is no OAuth authorization server, so no protected-resource metadata is
  served: clients must be given the key. The SDK's token verifier checks it again.
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

from typing import Any

import orjson
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import Message, Prompt, PromptArgument, UserMessage
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, GetPromptResult, InputRequiredResult
from mcp.types import Prompt as MCPPrompt
from pydantic import Field
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from modelrouter import __version__
from modelrouter.api.guard import host_rules, url_host
from modelrouter.errors import RouterError
from modelrouter.frontdoor import FrontDoor
from modelrouter.mcp.chat import caller, token
from modelrouter.mcp.schemas import model_list, route_detail
from modelrouter.mcp.tools import register_tools
from modelrouter.prompts import check_variables, fill, prompt_variables
from modelrouter.settings import PromptSettings, ServerSettings

INSTRUCTIONS = (
    "modelrouter routes chat requests to LLMs with health-aware fallback. Use 'chat' to "
    "ask a route or model, 'compare' to ask several models at once, 'list_models' to see "
    "what exists and 'model_health' for health detail."
)


class ApiKeyVerifier:
    """A :class:`mcp.server.auth.provider.TokenVerifier` asking the front door."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's grant if the front door accepts it as a key, else ``None``."""
        ok = self._door.authenticate(token)
        return AccessToken(token=token, client_id="api-key", scopes=[]) if ok else None


REALM = "modelrouter"
KEY_HINT = (
    "modelrouter's /mcp needs one of the server's API keys (server.api_keys): send the "
    "header 'Authorization: Bearer <key>'. There is no OAuth sign-in; give the client the "
    "key (mcp-remote and the MCP Inspector: --header)."
)


class BearerGate:
    """ASGI middleware: a request without a valid key gets 401 with a Bearer challenge.

    The SDK answers a missing key with ``error="invalid_token"`` and no hint. RFC 6750
    (section 3.1) asks for no error code when the request carried no credentials, and
    a realm; the body says which header to send, so a person reading a client's error
    knows what to do.
    """

    def __init__(self, app: ASGIApp, verifier: ApiKeyVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        scheme, _, token = header.partition(" ")
        bearer = scheme.lower() == "bearer" and bool(token.strip())
        if bearer and await self.verifier.verify_token(token.strip()) is not None:
            await self.app(scope, receive, send)
            return
        challenge = f'Bearer realm="{REALM}"'
        if bearer:
            challenge += ', error="invalid_token", error_description="unknown API key"'
        # /v1's 401 (OpenAI's shape and code), with the MCP clients' way to send the key.
        body = RouterError(
            401, KEY_HINT, type="authentication_error", code="invalid_api_key"
        ).body()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


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


class RouterMCPServer(MCPServer[Any]):
    """The SDK's server, with an unknown prompt refused as invalid params (-32602), and
    prompts shown and given only to keys that may use their route.

    The SDK raises ``ValueError`` for an unknown prompt, which reaches the client as
    error code 0; the MCP spec names -32602 for an invalid prompt name, as the SDK
    already answers an unknown resource.
    """

    door: FrontDoor | None = None
    """Set by :func:`build_mcp_server`: whose keys decide which prompts a caller sees."""

    def _prompt_route(self, name: str) -> str:
        assert self.door is not None
        prompt = self.door.settings.prompts.get(name)
        return (prompt.route if prompt is not None else None) or self.door.default_route or ""

    async def list_prompts(self) -> list[MCPPrompt]:
        """The prompts whose route the caller's key may use."""
        prompts = await super().list_prompts()
        if self.door is None:
            return prompts
        identity = self.door.identify(token())
        if identity is None or not identity.models:
            return prompts
        door = self.door
        return [p for p in prompts if door.gate.may_use(identity, self._prompt_route(p.name))]

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        context: Context[Any, Any] | None = None,
    ) -> GetPromptResult | InputRequiredResult:
        """The rendered prompt; an unknown name is an invalid-params error naming the known ones."""
        known = [p.name for p in await super().list_prompts()]
        if name not in known:
            listed = ", ".join(known) or "none"
            raise MCPError(INVALID_PARAMS, f"No prompt {name!r} (prompts: {listed})")
        if self.door is not None:
            identity = self.door.identify(token())
            route = self._prompt_route(name)
            refused = self.door.gate.permissions.refusal(identity, [route]) if identity else None
            if refused is not None:
                # The message a chat on that route would get.
                raise MCPError(INVALID_PARAMS, refused.message)
        return await super().get_prompt(name, arguments, context)


def register_resources(mcp: MCPServer[Any], door: FrontDoor) -> None:
    """``modelrouter://models``, ``modelrouter://health``, ``modelrouter://routes/{name}``."""

    @mcp.resource(
        "modelrouter://models",
        name="models",
        mime_type="application/json",
        description="Routes and models with health state and rank",
    )
    async def models_resource() -> str:
        return model_list(door, caller(door)).model_dump_json()

    @mcp.resource(
        "modelrouter://health",
        name="health",
        mime_type="application/json",
        description="Every model's health and rank in each route (as GET /health)",
    )
    async def health_resource() -> str:
        return orjson.dumps(door.health(detailed=True)).decode()

    @mcp.resource(
        "modelrouter://routes/{name}",
        name="route",
        mime_type="application/json",
        description="One route: its models, current order, readiness and members' health",
    )
    async def route_resource(name: str) -> str:
        detail = route_detail(door, name) if door.gate.may_use(caller(door), name) else None
        if detail is None:
            known = ", ".join(door.settings.routes) or "none"
            raise ResourceNotFoundError(f"No route {name!r} (routes: {known})")
        return orjson.dumps(detail).decode()


def build_mcp_server(door: FrontDoor) -> MCPServer[Any]:
    """The MCP server over one front door; bearer keys when the door needs them (HTTP)."""
    server = door.settings.server
    verifier = None if door.open else ApiKeyVerifier(door)
    settings = None
    if verifier is not None:
        issuer = f"http://{url_host(server.host)}:{server.port or 80}"
        settings = AuthSettings(issuer_url=issuer, resource_server_url=None)
    mcp = RouterMCPServer(
        "modelrouter",
        title="modelrouter",
        instructions=INSTRUCTIONS,
        version=__version__,
        token_verifier=verifier,
        auth=settings,
        log_level="WARNING",
    )
    mcp.door = door
    register_tools(mcp, door)
    register_resources(mcp, door)
    for name, prompt in door.settings.prompts.items():
        mcp.add_prompt(ConfigPrompt.of(name, prompt))
    return mcp


def mcp_http_app(mcp: MCPServer[Any], door: FrontDoor) -> Starlette:
    """The Streamable HTTP app answering at ``/mcp``; give it a ``Route("/mcp", ...)``.

    The app matches the path ``/mcp`` itself, so it must see the full path: an exact
    route keeps it (a ``Mount("/mcp")`` would strip it and answer 307).

    Stateless (any worker answers any request, so ``--workers N`` needs no sticky
    sessions) with SSE responses, so progress notifications still reach the client.
    """
    app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=False,
        stateless_http=True,
        transport_security=transport_security(door.settings.server),
    )
    if not door.open:
        # Outermost, so it answers before the SDK's own (hint-less) 401.
        app.add_middleware(BearerGate, verifier=ApiKeyVerifier(door))
    return app
