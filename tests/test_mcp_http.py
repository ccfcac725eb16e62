"""MCP over Streamable HTTP: the SDK's client against the real server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from modelrouter.frontdoor import FrontDoor
from modelrouter.mcp.server import ApiKeyVerifier, transport_security
from modelrouter.runtime import Runtime
from modelrouter.settings import ServerSettings
from tests.fakes.upstream import FakeUpstream, status
from tests.router import RunningRouter, router_config, run_router

KEY = "sk-mcp-test"
MESSAGES = [{"role": "user", "content": "hi"}]
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture
def first() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("first") as up:
        yield up


@pytest.fixture
def second() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("second") as up:
        yield up


def config(first: FakeUpstream, second: FakeUpstream, keys: list[str]) -> Any:
    return router_config(
        providers={
            "p1": {"kind": "openai", "base_url": first.base_url, "api_key": "k1"},
            "p2": {"kind": "openai", "base_url": second.base_url, "api_key": "k2"},
        },
        models={"first": {"provider": "p1"}, "second": {"provider": "p2"}},
        routes={"default": {"models": ["first", "second"]}},
        router={"retries_per_model": 0},
        # Port 0: the OS picks the port, so the Host check accepts any port of loopback.
        server={"api_keys": keys, "host": "127.0.0.1", "port": 0},
    )


@pytest.fixture
def router(first: FakeUpstream, second: FakeUpstream) -> Iterator[RunningRouter]:
    with run_router(config(first, second, [KEY])) as r:
        yield r


@asynccontextmanager
async def mcp_client(
    r: RunningRouter, key: str | None = KEY, mode: Any = "auto", **http: Any
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    hc = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20, read=60), **http)
    async with hc, Client(streamable_http_client(r.url + "/mcp", http_client=hc), mode=mode) as c:
        yield c


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_chat_over_http_falls_back_with_progress(
    router: RunningRouter, first: FakeUpstream, mode: Any
) -> None:
    first.default = status(503)
    progress: list[str | None] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with mcp_client(router, mode=mode) as c:
        result = await c.call_tool("chat", {"prompt": "hi"}, progress_callback=on_progress)
    assert not result.is_error
    out = result.structured_content
    assert out is not None
    assert (out["content"], out["model"]) == ("hello from second", "second")
    assert [(a["model"], a["status"]) for a in out["attempts"]] == [("first", 503), ("second", 200)]
    assert progress == [
        "trying first",
        "first failed: 503; falling back to second",
        "second answered",
    ]


def health_counts(r: RunningRouter) -> dict[str, tuple[int, ...]]:
    models = httpx2.get(r.url + "/health", timeout=10).json()["models"]
    return {
        name: (
            m["totals"]["requests"],
            m["totals"]["failures"],
            m["window"]["requests"],
            m["window"]["failures"],
        )
        for name, m in models.items()
    }


def delta(after: dict[str, tuple[int, ...]], before: dict[str, tuple[int, ...]]) -> Any:
    return {k: tuple(a - b for a, b in zip(after[k], before[k], strict=True)) for k in after}


async def test_mcp_chat_counts_in_health_exactly_like_http(
    router: RunningRouter, first: FakeUpstream
) -> None:
    first.default = status(503)
    start = health_counts(router)
    resp = httpx2.post(
        router.base_url + "/chat/completions",
        json={"messages": MESSAGES},
        headers={"authorization": f"Bearer {KEY}"},
        timeout=20,
    )
    assert resp.status_code == 200 and resp.headers["x-modelrouter-attempts"] == "2"
    after_http = health_counts(router)
    async with mcp_client(router) as c:
        result = await c.call_tool("chat", {"messages": MESSAGES})
    assert not result.is_error
    after_mcp = health_counts(router)
    by_http = delta(after_http, start)
    assert by_http == {"first": (1, 1, 1, 1), "second": (1, 0, 1, 0)}
    assert delta(after_mcp, after_http) == by_http


async def test_no_or_wrong_key_is_401(router: RunningRouter) -> None:
    url = router.url + "/mcp"
    resp = httpx2.post(url, json=INIT, headers=MCP_HEADERS, timeout=10)
    assert resp.status_code == 401
    # RFC 6750 section 3.1: no credentials sent, so a challenge without an error code.
    assert resp.headers["www-authenticate"] == 'Bearer realm="modelrouter"'
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
    assert "'Authorization: Bearer <key>'" in error["message"]
    wrong = {**MCP_HEADERS, "authorization": "Bearer sk-wrong"}
    resp = httpx2.post(url, json=INIT, headers=wrong, timeout=10)
    assert resp.status_code == 401
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="modelrouter", error="invalid_token"')
    bare = {**MCP_HEADERS, "authorization": KEY}
    resp = httpx2.post(url, json=INIT, headers=bare, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer realm="modelrouter"'
    # No OAuth authorization server exists, so no metadata claims one.
    well_known = router.url + "/.well-known/oauth-protected-resource"
    assert httpx2.get(well_known, timeout=10).status_code == 404
    good = {**MCP_HEADERS, "authorization": f"Bearer {KEY}"}
    assert httpx2.post(url, json=INIT, headers=good, timeout=10).status_code == 200
    seen: list[int] = []

    async def record(response: httpx2.Response) -> None:
        seen.append(response.status_code)

    hooks = {"response": [record]}
    with pytest.raises(ExceptionGroup) as info:
        async with mcp_client(router, key="sk-wrong", event_hooks=hooks) as c:
            await c.list_tools()
    assert info.group_contains(MCPError)
    assert seen and set(seen) == {401}


def test_wrong_host_or_origin_is_refused(router: RunningRouter) -> None:
    url = router.url + "/mcp"
    auth = {**MCP_HEADERS, "authorization": f"Bearer {KEY}"}
    for host in ("evil.example", f"evil.example:{router.port}", "10.0.0.1:80"):
        resp = httpx2.post(url, json=INIT, headers={**auth, "host": host}, timeout=10)
        assert resp.status_code == 421, host
    resp = httpx2.post(url, json=INIT, headers={**auth, "origin": "http://evil.example"})
    assert resp.status_code == 403
    for host in (f"127.0.0.1:{router.port}", f"localhost:{router.port}"):
        resp = httpx2.post(
            url, json=INIT, headers={**auth, "host": host, "origin": f"http://{host}"}, timeout=10
        )
        assert resp.status_code == 200, host


def test_other_paths_keep_the_openai_404(router: RunningRouter) -> None:
    for path in ("/nothing", "/mcp/extra", "/v1/nothing"):
        resp = httpx2.get(router.url + path, timeout=10)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] == "not_found"


async def test_no_keys_means_no_auth(first: FakeUpstream, second: FakeUpstream) -> None:
    with run_router(config(first, second, [])) as r:
        async with mcp_client(r, key=None) as c:
            result = await c.call_tool("list_models", {})
    assert result.structured_content is not None
    assert result.structured_content["default_route"] == "default"


def settings(host: str, port: int) -> ServerSettings:
    return ServerSettings(host=host, port=port)


@pytest.mark.parametrize(
    ("host", "port", "hosts"),
    [
        ("127.0.0.1", 8080, ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"]),
        ("localhost", 0, ["127.0.0.1:*", "localhost:*", "[::1]:*"]),
        ("router.internal", 9000, ["router.internal:9000"]),
        ("10.1.2.3", 80, ["10.1.2.3:80", "10.1.2.3"]),
        ("fd00::5", 8080, ["[fd00::5]:8080"]),
    ],
)
def test_allowed_hosts_follow_the_configured_address(
    host: str, port: int, hosts: list[str]
) -> None:
    sec = transport_security(settings(host, port))
    assert sec.enable_dns_rebinding_protection
    assert sec.allowed_hosts == hosts
    assert sec.allowed_origins == [f"http://{h}" for h in hosts]


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_wildcard_bind_turns_host_checks_off(host: str) -> None:
    assert not transport_security(settings(host, 8080)).enable_dns_rebinding_protection


async def test_key_verifier() -> None:
    cfg = router_config(
        providers={"sim": {"kind": "simulated"}},
        models={"m": {"provider": "sim"}},
        routes={"default": {"models": ["m"]}},
        server={"api_keys": ["a-key", "b-key"]},
    )
    verifier = ApiKeyVerifier(FrontDoor(Runtime(cfg)))
    assert await verifier.verify_token("b-key") is not None
    assert await verifier.verify_token("c-key") is None
    assert await verifier.verify_token("") is None
