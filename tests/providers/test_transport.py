"""The transports behind a provider: proxy from the environment, custom CA and client
certificates, HTTP/2 — each against a real server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from providers.base import ChatRequest, Failure, ProviderError, Target
from providers.lean import Origin
from providers.openai import OpenAIOptions, OpenAIProvider
from providers.transport import HttpxOrigin
from tests.fakes.upstream import FakeUpstream

BODY = {"messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
}


def provider(**options: Any) -> OpenAIProvider:
    return OpenAIProvider("p", OpenAIOptions(kind="openai", **options))


async def chat(p: OpenAIProvider) -> dict[str, Any]:
    try:
        done = await p.chat(ChatRequest.from_body(dict(BODY)), Target("m", "m"), 5)
    finally:
        await p.aclose()
    data: dict[str, Any] = orjson.loads(done.body)
    return data


# -- proxy ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def forward_proxy() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A plain HTTP forward proxy: records each request line, then relays bytes."""
    seen: list[bytes] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0]
        seen.append(line)
        target = line.split(b" ")[1]  # absolute form: http://host:port/path
        hostport = target.split(b"/")[2].decode()
        host, port = hostport.rsplit(":", 1)
        path = b"/" + target.split(b"/", 3)[3]
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        up_writer.write(head.replace(target, path, 1))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


async def test_a_proxy_in_the_environment_is_used_and_no_proxy_is_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeUpstream("up") as up, forward_proxy() as (port, seen):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        p = provider(base_url=up.base_url)
        assert isinstance(p.origin, HttpxOrigin)
        assert (await chat(p))["choices"][0]["message"]["content"] == "hello from up"
        assert seen == [f"POST {up.base_url}/chat/completions HTTP/1.1".encode()]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = provider(base_url=up.base_url)
        assert isinstance(direct.origin, Origin)
        await chat(direct)
        assert len(seen) == 1
        forced = provider(base_url=up.base_url, transport="lean")
        monkeypatch.delenv("NO_PROXY")
        assert isinstance(forced.origin, Origin)


# -- TLS: a custom CA, a client certificate --------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def pem(tmp_path: Path, name: str, blob: trustme.Blob) -> str:
    path = tmp_path / name
    blob.write_to_path(str(path))
    return str(path)


@contextlib.asynccontextmanager
async def tls_upstream(
    ca: trustme.CA, *, client_ca: trustme.CA | None = None
) -> AsyncIterator[int]:
    """An HTTPS server answering one fixed completion; optionally demanding a client cert."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    body = orjson.dumps(COMPLETION)
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    answer += f"Content-Length: {len(body)}\r\n\r\n".encode() + body

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_custom_ca_bundle_is_trusted_and_the_system_store_is_not(
    ca: trustme.CA, tmp_path: Path
) -> None:
    async with tls_upstream(ca) as port:
        url = f"https://127.0.0.1:{port}/v1"
        bundle = pem(tmp_path, "ca.pem", ca.cert_pem)
        p = provider(base_url=url, ca_bundle=bundle)
        assert isinstance(p.origin, Origin)  # the fast client does custom TLS itself
        assert (await chat(p))["choices"][0]["message"]["content"] == "ok"
        with pytest.raises(ProviderError) as info:
            await chat(provider(base_url=url))
        assert info.value.failure is Failure.CONNECT


async def test_a_client_certificate_is_presented(ca: trustme.CA, tmp_path: Path) -> None:
    client_ca = trustme.CA()
    cert = client_ca.issue_cert("router@example.com")
    async with tls_upstream(ca, client_ca=client_ca) as port:
        url = f"https://127.0.0.1:{port}/v1"
        bundle = pem(tmp_path, "ca.pem", ca.cert_pem)
        with_cert = provider(
            base_url=url,
            ca_bundle=bundle,
            client_cert=pem(tmp_path, "client.pem", cert.cert_chain_pems[0]),
            client_key=pem(tmp_path, "client.key", cert.private_key_pem),
        )
        assert (await chat(with_cert))["choices"][0]["message"]["content"] == "ok"
        with pytest.raises(ProviderError):
            await chat(provider(base_url=url, ca_bundle=bundle))


# -- HTTP/2 -----------------------------------------------------------------------------


async def test_http2_is_spoken_when_asked(ca: trustme.CA, tmp_path: Path) -> None:
    versions: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        versions.append(scope["http_version"])
        while (await receive()).get("more_body"):
            pass
        body = orjson.dumps(COMPLETION)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    server_cert = ca.issue_cert("127.0.0.1")
    config = HypercornConfig()
    config.certfile = pem(tmp_path, "server.pem", server_cert.cert_chain_pems[0])
    config.keyfile = pem(tmp_path, "server.key", server_cert.private_key_pem)
    config.alpn_protocols = ["h2", "http/1.1"]
    hostport = f"127.0.0.1:{free_port()}"
    config.bind = [hostport]
    stop = asyncio.Event()
    task = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        await wait_listening(hostport)
        url = f"https://{hostport}/v1"
        p = provider(base_url=url, ca_bundle=pem(tmp_path, "ca.pem", ca.cert_pem), http2=True)
        assert isinstance(p.origin, HttpxOrigin)
        assert (await chat(p))["choices"][0]["message"]["content"] == "ok"
        assert versions == ["2"]
    finally:
        stop.set()
        await task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_listening(hostport: str) -> None:
    host, port = hostport.rsplit(":", 1)
    for _ in range(200):
        try:
            _, w = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.02)
            continue
        w.close()
        return
    raise TimeoutError(hostport)


# -- per-request credentials ------------------------------------------------------------


async def test_a_signer_adds_fresh_credentials_to_every_request() -> None:
    async with FakeUpstream("up") as up:
        p = provider(base_url=up.base_url)
        issued: list[tuple[str, str, bytes]] = []

        async def signer(method: str, path: str, body: Any) -> bytes:
            raw = b"".join(bytes(x) for x in body) if isinstance(body, list) else bytes(body)
            issued.append((method, path, raw))
            return f"Authorization: Bearer short-lived-{len(issued)}\r\n".encode()

        p.signer = signer
        for _ in range(2):
            done = await p.chat(ChatRequest.from_body(dict(BODY)), Target("m", "m"), 5)
            assert orjson.loads(done.body)["choices"]
        await p.aclose()
    assert [r.headers["authorization"] for r in up.requests] == [
        "Bearer short-lived-1",
        "Bearer short-lived-2",
    ]
    assert [(m, path) for m, path, _ in issued] == [("POST", "/v1/chat/completions")] * 2
    assert orjson.loads(issued[0][2])["messages"] == BODY["messages"]
