"""The request guard on every route: Host (421), Origin (403), JSON only (415), CORS.

The attack these stop: a web page the developer visits drives the keyless router on
localhost, through DNS rebinding (a foreign Host) or a "simple" cross-site request
(a foreign Origin, a text/plain or form body that needs no preflight).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelrouter.api.guard import Guard, host_rules
from modelrouter.mcp.server import transport_security
from modelrouter.settings import ServerSettings
from tests.router import RunningRouter, router_config, run_router

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
CHAT = {"model": "sim", "messages": MESSAGES}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream"}
# Every route the router has, each with a request it would answer 2xx (or 404 for the
# unknown path) when the guard lets it through.
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/prompts/greet", {"variables": {"name": "Ada"}}),
    ("GET", "/v1/models", None),
    ("GET", "/v1/models/sim", None),
    ("GET", "/health", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("POST", "/mcp", INIT),
    ("GET", "/no/such/path", None),
]


def config(**server: Any) -> Any:
    return router_config(
        providers={"sim": {"kind": "simulated"}},
        models={"sim": {"provider": "sim"}},
        routes={"default": {"models": ["sim"]}},
        prompts={"greet": {"template": "Say hello to {name}"}},
        server=server,
    )


@pytest.fixture
def router() -> Iterator[RunningRouter]:
    # No api_keys: the default, and the case where a foreign page could spend credits.
    with run_router(config()) as r:
        yield r


def call(r: RunningRouter, method: str, path: str, body: Any, **headers: str) -> httpx2.Response:
    extra = MCP_HEADERS if path == "/mcp" else {}
    return httpx2.request(method, r.url + path, json=body, headers={**extra, **headers}, timeout=10)


def error_code(resp: httpx2.Response) -> str | None:
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    code: str | None = err["code"]
    return code


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_foreign_host_is_421_on_every_route(
    router: RunningRouter, method: str, path: str, body: Any
) -> None:
    # What a DNS-rebound page sends: its own name, the router's port.
    for host in ("evil.example", f"evil.example:{router.port}", "10.0.0.1:80"):
        resp = call(router, method, path, body, host=host)
        assert resp.status_code == 421, (path, host)
        assert error_code(resp) == "host_not_allowed"
        assert resp.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_foreign_origin_is_403_on_every_route(
    router: RunningRouter, method: str, path: str, body: Any
) -> None:
    for origin in ("http://evil.example", f"http://evil.example:{router.port}", "null"):
        resp = call(router, method, path, body, origin=origin)
        assert resp.status_code == 403, (path, origin)
        assert error_code(resp) == "origin_not_allowed"
        assert "access-control-allow-origin" not in resp.headers


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_own_host_and_origin_pass_on_every_route(
    router: RunningRouter, method: str, path: str, body: Any
) -> None:
    expected = 404 if path == "/no/such/path" else 200
    for name in ("127.0.0.1", "localhost"):
        host = f"{name}:{router.port}"
        assert call(router, method, path, body, host=host).status_code == expected
        resp = call(router, method, path, body, host=host, origin=f"http://{host}")
        assert resp.status_code == expected, (path, host)


def test_sdk_requests_without_origin_pass(router: RunningRouter) -> None:
    client = openai.OpenAI(base_url=router.base_url, api_key="unused", max_retries=0)
    done = client.chat.completions.create(model="sim", messages=MESSAGES)
    assert "hi" in (done.choices[0].message.content or "")
    stream = client.chat.completions.create(model="sim", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert [m.id for m in client.models.list()]


@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/prompts/greet"])
def test_non_json_bodies_are_415(router: RunningRouter, path: str, ctype: str) -> None:
    body = b'{"model": "sim", "messages": [{"role": "user", "content": "hi"}]}'
    resp = httpx2.post(router.url + path, content=body, headers={"content-type": ctype}, timeout=10)
    assert resp.status_code == 415, ctype
    assert error_code(resp) == "unsupported_media_type"


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/vnd.example+json",
        None,
    ],
)
def test_json_bodies_and_a_missing_content_type_pass(
    router: RunningRouter, ctype: str | None
) -> None:
    body = b'{"model": "sim", "messages": [{"role": "user", "content": "hi"}]}'
    headers = {"content-type": ctype} if ctype else {}
    resp = httpx2.post(
        router.base_url + "/chat/completions", content=body, headers=headers, timeout=10
    )
    if ctype is None:
        assert "content-type" not in resp.request.headers
    assert resp.status_code == 200, ctype


def test_curl_style_form_post_says_what_to_send(router: RunningRouter) -> None:
    # `curl -d '{...}'` sends the form type: the message must tell the user the fix.
    resp = httpx2.post(
        router.base_url + "/chat/completions",
        content=b'{"model": "sim"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert resp.status_code == 415
    assert "Content-Type: application/json" in resp.json()["error"]["message"]


def test_mcp_keeps_its_own_content_type_rules(router: RunningRouter) -> None:
    # /mcp is not under /v1: the MCP SDK answers non-JSON posts itself (its 400).
    resp = httpx2.post(
        router.url + "/mcp",
        content=b"{}",
        headers={**MCP_HEADERS, "content-type": "text/plain"},
        timeout=10,
    )
    assert resp.status_code == 400


# --- CORS -----------------------------------------------------------------------------

APP = "https://app.example"


@pytest.fixture
def cors_router() -> Iterator[RunningRouter]:
    with run_router(config(cors_origins=[APP + "/", "http://localhost:3000"])) as r:
        yield r


def preflight(r: RunningRouter, origin: str, path: str = "/v1/chat/completions") -> httpx2.Response:
    return httpx2.options(
        r.url + path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
        timeout=10,
    )


def header_set(resp: httpx2.Response, name: str) -> set[str]:
    return {v.strip().lower() for v in resp.headers.get(name, "").split(",") if v.strip()}


def test_preflight_from_a_listed_origin(cors_router: RunningRouter) -> None:
    for path in ("/v1/chat/completions", "/v1/models", "/mcp"):
        resp = preflight(cors_router, APP, path)
        assert resp.status_code == 204, path
        assert resp.headers["access-control-allow-origin"] == APP
        assert "origin" in header_set(resp, "vary")
        # PATCH and DELETE: the admin API's key updates and revocations, and MCP's
        # session end (DELETE /mcp) from a browser client
        methods = header_set(resp, "access-control-allow-methods")
        assert {"get", "post", "patch", "delete", "options"} <= methods
        allowed = header_set(resp, "access-control-allow-headers")
        assert {"authorization", "content-type", "x-request-id", "x-modelrouter-models"} <= allowed
        # What the browser asked for (the openai JS SDK sends x-stainless-*).
        assert "x-stainless-os" in allowed
        assert int(resp.headers["access-control-max-age"]) > 0


def test_preflight_from_other_origins_is_refused(
    cors_router: RunningRouter, router: RunningRouter
) -> None:
    for r, origin in ((cors_router, "https://evil.example"), (router, APP)):
        resp = preflight(r, origin)
        assert resp.status_code == 403
        assert "access-control-allow-origin" not in resp.headers


def test_cross_origin_answers_carry_cors_headers(cors_router: RunningRouter) -> None:
    origin = {"origin": "http://localhost:3000"}
    resp = call(cors_router, "POST", "/v1/chat/completions", CHAT, **origin)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "origin" in header_set(resp, "vary")
    exposed = header_set(resp, "access-control-expose-headers")
    assert {
        "x-request-id",
        "x-modelrouter-model",
        "x-modelrouter-provider",
        "x-modelrouter-attempts",
    } <= exposed
    # Errors too, so the page can read what went wrong.
    resp = call(cors_router, "POST", "/v1/chat/completions", {**CHAT, "model": "nope"}, **origin)
    assert resp.status_code == 404
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    resp = httpx2.post(
        cors_router.base_url + "/chat/completions",
        content=b"{}",
        headers={**origin, "content-type": "text/plain"},
        timeout=10,
    )
    assert resp.status_code == 415
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_cross_origin_stream_carries_cors_headers(cors_router: RunningRouter) -> None:
    with httpx2.stream(
        "POST",
        cors_router.base_url + "/chat/completions",
        json={**CHAT, "stream": True},
        headers={"origin": APP},
        timeout=10,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == APP
        body = b"".join(resp.iter_bytes())
    assert body.rstrip().endswith(b"data: [DONE]")


def test_same_origin_answers_carry_no_cors_headers(router: RunningRouter) -> None:
    host = f"127.0.0.1:{router.port}"
    resp = call(router, "GET", "/v1/models", None, origin=f"http://{host}")
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers


def test_star_allows_every_origin() -> None:
    with run_router(config(cors_origins=["*"])) as r:
        resp = preflight(r, "https://anything.example")
        assert resp.status_code == 204
        assert resp.headers["access-control-allow-origin"] == "https://anything.example"
        resp = call(r, "POST", "/v1/chat/completions", CHAT, origin="null")
        assert resp.status_code == 200
        # The Host check is separate, and stays on.
        assert call(r, "GET", "/v1/models", None, host="evil.example").status_code == 421


# --- other bind addresses and allowed_hosts ---------------------------------------------


def test_wildcard_bind_checks_origin_against_the_request_host() -> None:
    # Bound to 0.0.0.0 the names clients use are unknowable: any Host passes, but a page
    # may only call the router it was served from (its Origin names the same host).
    with run_router(config(host="0.0.0.0")) as r:
        lan = f"192.168.1.5:{r.port}"
        assert call(r, "POST", "/v1/chat/completions", CHAT, host=lan).status_code == 200
        resp = call(r, "POST", "/v1/chat/completions", CHAT, host=lan, origin=f"http://{lan}")
        assert resp.status_code == 200
        resp = call(r, "POST", "/v1/chat/completions", CHAT, host=lan, origin="http://evil.example")
        assert resp.status_code == 403


def test_allowed_hosts_extend_host_and_origin_checks() -> None:
    with run_router(config(allowed_hosts=["Router.Internal", "llm.example:8443"])) as r:
        for method, path, body in ROUTES[:-1]:
            for host in ("router.internal", "router.internal:9999", "llm.example:8443"):
                resp = call(r, method, path, body, host=host, origin=f"https://{host}")
                assert resp.status_code == 200, (path, host)
        assert call(r, "GET", "/healthz", None, host="llm.example:8444").status_code == 421
        # Loopback still works: the bound address is always allowed.
        assert call(r, "GET", "/healthz", None, host=f"localhost:{r.port}").status_code == 200


def test_allowed_hosts_star_turns_the_host_check_off() -> None:
    with run_router(config(allowed_hosts=["*"])) as r:
        resp = call(r, "POST", "/mcp", INIT, host="anything.example")
        assert resp.status_code == 200
        resp = call(r, "GET", "/v1/models", None, host="a.example", origin="http://b.example")
        assert resp.status_code == 403


# --- the rules, unit by unit --------------------------------------------------------------


def scope(headers: dict[str, str], method: str = "GET", path: str = "/v1/models") -> Any:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "headers": raw}


async def never(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not reached")


@pytest.mark.parametrize(
    ("host", "port", "ok", "refused"),
    [
        (
            "127.0.0.1",
            8080,
            ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"],
            ["127.0.0.1:8081", "localhost", "evil:8080"],
        ),
        ("localhost", 80, ["localhost", "localhost:80", "127.0.0.1"], ["localhost:8080"]),
        ("127.0.0.1", 0, ["127.0.0.1:1234", "LOCALHOST:5"], ["evil:1234"]),
        ("10.1.2.3", 8080, ["10.1.2.3:8080"], ["127.0.0.1:8080", "10.1.2.3:8081"]),
        ("::1", 8080, ["[::1]:8080", "localhost:8080"], ["[::2]:8080"]),
    ],
)
def test_host_rules(host: str, port: int, ok: list[str], refused: list[str]) -> None:
    guard = Guard(never, ServerSettings(host=host, port=port))
    for value in ok:
        assert guard.check(scope({"host": value})) is None, value
    for value in refused:
        assert guard.check(scope({"host": value})) is not None, value
    # A request without Host cannot come from a browser, but HTTP/1.1 requires one.
    assert guard.check(scope({})) is not None


def test_no_host_check_on_a_wildcard_bind() -> None:
    assert not host_rules(ServerSettings(host="0.0.0.0", port=8080)).check
    assert host_rules(ServerSettings(host="0.0.0.0", port=8080, allowed_hosts=["a"])).check


def test_mcp_transport_security_follows_allowed_hosts_and_cors_origins() -> None:
    server = ServerSettings(
        port=8080, allowed_hosts=["router.internal"], cors_origins=["https://app.example"]
    )
    sec = transport_security(server)
    assert sec.enable_dns_rebinding_protection
    assert {"router.internal", "router.internal:*", "localhost:8080"} <= set(sec.allowed_hosts)
    assert {"https://router.internal", "https://app.example"} <= set(sec.allowed_origins)
    star = ServerSettings(port=8080, cors_origins=["*"])
    # The SDK cannot say "any origin": the guard in front checks Host for it.
    assert not transport_security(star).enable_dns_rebinding_protection


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cors_origins", ["myapp.test"]),
        ("cors_origins", ["https://myapp.test/path"]),
        ("cors_origins", ["ftp://myapp.test"]),
        ("allowed_hosts", ["https://router.internal"]),
        ("allowed_hosts", ["router.internal/x"]),
    ],
)
def test_malformed_entries_are_config_errors(key: str, value: list[str]) -> None:
    from modelrouter.config import ConfigError

    with pytest.raises(ConfigError) as info:
        config(**{key: value})
    assert f"server.{key}" in str(info.value)
    assert value[0] not in str(info.value)
