"""The lean HTTP/1.1 client against raw servers that send exactly the bytes a test wants."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from providers.base import Failure, ProviderError
from providers.lean import Origin
from tests.fakes.upstream import refused_port


@asynccontextmanager
async def raw_server(
    answers: list[bytes], close_after: bool = False
) -> AsyncIterator[dict[str, int]]:
    """Answer each request (read up to its blank line + Content-Length body) with the next bytes."""
    stats = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        try:
            while answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                stats["requests"] += 1
                answer = answers.pop(0)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    stats["port"] = server.sockets[0].getsockname()[1]
    async with server:
        yield stats


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def chunked(*parts: bytes) -> bytes:
    out = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for p in parts:
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


async def get(origin: Origin) -> tuple[int, bytes]:
    resp = await origin.request("POST", "/v1/x", b"X-Test: 1\r\n", b"{}", 2)
    try:
        return resp.status, await resp.read()
    finally:
        resp.release()


async def test_content_length_and_chunked_bodies_reuse_one_connection() -> None:
    async with raw_server([ok(b"hello"), chunked(b"a", b"bc"), ok(b"")]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        assert await get(origin) == (200, b"hello")
        resp = await origin.request("POST", "/", b"", b"", 2)
        assert resp.headers["content-type"] == "text/event-stream"
        assert [c async for c in resp.chunks()] == [b"a", b"bc"]
        resp.release()
        assert await get(origin) == (200, b"")
        origin.close()
    assert st["connections"] == 1 and st["requests"] == 3


async def test_stale_keepalive_connection_is_replaced_once() -> None:
    # The second request finds its kept-alive connection closed by the server before any
    # answer (as after an idle timeout): the client retries once on a new connection.
    async with raw_server([ok(b"1"), None, ok(b"2")]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        assert await get(origin) == (200, b"1")
        assert await get(origin) == (200, b"2")
        origin.close()
    assert st["connections"] == 2 and st["requests"] == 3


async def test_refused_and_cut_and_garbage() -> None:
    origin = Origin(f"http://127.0.0.1:{refused_port()}", "t")
    with pytest.raises(ProviderError) as info:
        await get(origin)
    assert info.value.failure is Failure.CONNECT and "refused" in info.value.message

    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"
    async with raw_server([cut], close_after=True) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        with pytest.raises(ProviderError) as info:
            await get(origin)
        assert info.value.failure is Failure.INTERRUPTED

    async with raw_server([b"NOT HTTP AT ALL\r\n\r\n"]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        with pytest.raises(ProviderError) as info:
            await get(origin)
        assert info.value.failure in (Failure.MALFORMED, Failure.CONNECT)


async def test_large_body_pauses_reading_and_arrives_whole() -> None:
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB
    async with raw_server([ok(big)]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        resp = await origin.request("POST", "/", b"", b"", 2)
        got = bytearray()
        async for c in resp.chunks():
            got += c
            await asyncio.sleep(0)
        resp.release()
        assert bytes(got) == big
        origin.close()


async def test_cancelled_read_closes_the_connection() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
    async with raw_server([head, ok(b"next")]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        resp = await origin.request("POST", "/", b"", b"", 2)
        it = resp.chunks()
        assert await anext(it) == b"first"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await anext(it)
        resp.release()  # unfinished: must not go back to the pool
        assert origin.idle == []
        origin.close()


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


async def test_https_with_certificate_verification(self_signed: tuple[Path, Path]) -> None:
    key, cert = self_signed
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(chunked(b"secure"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    async with server:
        trusted = ssl.create_default_context(cafile=str(cert))
        origin = Origin(f"https://127.0.0.1:{port}", "t", ssl_context=trusted)
        assert await get(origin) == (200, b"secure")
        origin.close()
        # The system's CAs do not know this certificate: verification must fail.
        with pytest.raises(ProviderError) as info:
            await get(Origin(f"https://127.0.0.1:{port}", "t"))
        assert info.value.failure is Failure.CONNECT
        assert "SSLCertVerificationError" in info.value.message


async def test_body_delimited_by_connection_close_is_complete() -> None:
    answer = b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok": true}'
    async with raw_server([answer], close_after=True) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        assert await get(origin) == (200, b'{"ok": true}')
        assert origin.idle == []  # a closed connection is never reused
        origin.close()
