"""The lean HTTP/1.1 client against raw servers that send exactly the bytes a test wants."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from providers.base import Failure, ProviderError
from providers.lean import Origin
from tests.fakes.upstream import refused_port
from tests.providers.replay import Probe, lean_answer, read_request

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[str]], Awaitable[None]]


@asynccontextmanager
async def raw_server(
    answers: list[bytes | None], close_after: bool = False
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


async def test_early_hints_answer_is_not_left_for_the_next_request() -> None:
    # The cross-user leak: a 103 taken as the whole answer left the real one unread on a
    # pooled connection, and the next request (another user's) was given it.
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    probe = Probe()

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: list[str]
    ) -> None:
        await read_request(reader)
        writer.write(hints)
        await probe.until(lambda: probe.received >= len(hints))  # the hint arrives alone
        writer.write(ok(b"first"))
        body = await read_request(reader)
        writer.write(ok(b"own:" + body))
        await writer.drain()

    with probe.installed():
        async with scripted(handler) as (port, log):
            origin = Origin(f"http://127.0.0.1:{port}", "t")
            resp = await origin.request("POST", "/", b"", b"r1", 2)
            assert resp.status == 200 and "link" not in resp.headers
            assert await resp.read() == b"first"
            resp.release()
            assert (await lean_answer(origin, b"r2")).body == b"own:r2"
            origin.close()
    assert log.count("connect") == 1


async def test_101_fails_cleanly_without_a_transport_traceback() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nxx"
    async with raw_server([answer]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        with pytest.raises(ProviderError) as info:
            await get(origin)
        assert info.value.failure is Failure.MALFORMED
        assert info.value.message == "upstream switched protocols (101, t)"
        assert origin.idle == []
        await asyncio.sleep(0.01)
    loop.set_exception_handler(None)
    assert errors == []


@asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[tuple[int, list[str]]]:
    """A server whose connections run ``handler(reader, writer, log)``; yields (port, log)."""
    log: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        log.append("connect")
        try:
            await handler(reader, writer, log)
        except (asyncio.IncompleteReadError, ConnectionError):
            log.append("eof")
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], log
        await asyncio.wait(tasks, timeout=2)


async def test_stale_connection_is_retried_once_and_never_twice() -> None:
    # A reused connection that the server closes without a byte of answer: one retry on
    # a new connection. When that one is closed too, the error stands: no third send.
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: list[str]
    ) -> None:
        first = log.count("connect") == 1
        body = await read_request(reader)
        log.append(body.decode())
        if first:
            writer.write(ok(b"one"))
            await writer.drain()
            log.append((await read_request(reader)).decode())
        # then close without answering

    async with scripted(handler) as (port, log):
        origin = Origin(f"http://127.0.0.1:{port}", "t")
        assert (await lean_answer(origin, b"r1")).body == b"one"
        with pytest.raises(ProviderError) as info:
            await origin.request("POST", "/", b"", b"r2", 2)
        assert info.value.failure is Failure.CONNECT
        origin.close()
    assert log == ["connect", "r1", "r2", "connect", "r2"]


async def test_request_that_got_answer_bytes_is_not_sent_again() -> None:
    for partial in (b"HTTP/1.1 200 OK\r\nContent-Le", b"HTTP/1.1 100 Continue\r\n\r\n"):

        async def handler(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            log: list[str],
            partial: bytes = partial,
        ) -> None:
            log.append((await read_request(reader)).decode())
            writer.write(ok(b"one"))
            log.append((await read_request(reader)).decode())
            writer.write(partial)
            await writer.drain()

        async with scripted(handler) as (port, log):
            origin = Origin(f"http://127.0.0.1:{port}", "t")
            assert (await lean_answer(origin, b"r1")).body == b"one"
            with pytest.raises(ProviderError) as info:
                await origin.request("POST", "/", b"", b"r2", 2)
            # Answer bytes came: the upstream had the request, so it broke mid-answer.
            assert info.value.failure is Failure.INTERRUPTED
            origin.close()
        assert log == ["connect", "r1", "r2"]


async def test_server_closing_the_idle_connection_first_costs_no_retry() -> None:
    # The other side of the keep-alive race: the close arrived before the next request,
    # so the pooled connection is known dead and a new one is used directly.
    probe = Probe()
    with probe.installed():
        async with raw_server([ok(b"1"), ok(b"2")], close_after=True) as st:
            origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
            assert await get(origin) == (200, b"1")
            assert await probe.until(lambda: probe.lost == 1)
            assert await get(origin) == (200, b"2")
            origin.close()
    assert st["connections"] == 2 and st["requests"] == 2


async def test_bytes_arriving_on_an_idle_connection_close_it() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: list[str]
    ) -> None:
        while True:
            body = await read_request(reader)
            log.append(body.decode())
            writer.write(ok(b"own:" + body))
            if body == b"r1":
                # An answer to nothing, after the real one: must reach no request.
                writer.write(ok(b"unsolicited"))
            await writer.drain()

    probe = Probe()
    with probe.installed():
        async with scripted(handler) as (port, log):
            origin = Origin(f"http://127.0.0.1:{port}", "t")
            resp = await origin.request("POST", "/", b"", b"r1", 2)
            assert await resp.read() == b"own:r1"
            resp.release()
            await probe.until(lambda: probe.received >= len(ok(b"own:r1") + ok(b"unsolicited")))
            assert (await lean_answer(origin, b"r2")).body == b"own:r2"
            origin.close()
    assert log.count("connect") == 2


async def test_idle_timeout_closes_instead_of_reusing() -> None:
    async with raw_server([ok(b"1"), ok(b"2"), ok(b"3")]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t", idle_timeout=0.05)
        assert await get(origin) == (200, b"1")
        assert await get(origin) == (200, b"2")  # well within the timeout: reused
        assert st["connections"] == 1
        old = origin.idle[0]
        await asyncio.sleep(0.1)
        assert await get(origin) == (200, b"3")
        assert old.closed and st["connections"] == 2
        origin.close()


async def test_pool_keeps_at_most_max_idle_connections() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: list[str]
    ) -> None:
        while True:
            writer.write(ok(await read_request(reader)))
            await writer.drain()

    async with scripted(handler) as (port, log):
        origin = Origin(f"http://127.0.0.1:{port}", "t", max_idle=2)
        responses = await asyncio.gather(
            *(origin.request("POST", "/", b"", b"%d" % i, 2) for i in range(3))
        )
        conns = [r._conn for r in responses]
        for resp in responses:
            assert await resp.read() == b"%d" % responses.index(resp)
            resp.release()
        assert origin.idle == conns[1:] and conns[0].closed
        origin.close()
    assert log.count("connect") == 3


async def test_released_twice_is_pooled_once() -> None:
    async with raw_server([ok(b"1")]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
        resp = await origin.request("POST", "/", b"", b"", 2)
        await resp.read()
        resp.release()
        resp.release()
        assert len(origin.idle) == 1
        origin.close()


async def test_head_requests_are_refused() -> None:
    origin = Origin("http://127.0.0.1:9", "t")
    with pytest.raises(ValueError, match="HEAD"):
        await origin.request("HEAD", "/", b"", b"", 2)


async def test_declared_oversized_body_fails_before_it_arrives() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 10  # the rest never comes
    async with raw_server([head]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t", max_response_bytes=1000)
        resp = await origin.request("POST", "/", b"", b"", 2)
        with pytest.raises(ProviderError) as info:
            await asyncio.wait_for(resp.read(), 2)
        resp.release()
        assert info.value.failure is Failure.MALFORMED
        assert info.value.message == "upstream answer larger than 1000 bytes (t)"
        assert origin.idle == [] and resp._conn.closed


async def test_oversized_body_fails_while_it_arrives() -> None:
    # 64 MB offered in chunks against a 1 MB limit: the read fails after about 1 MB and
    # the connection is closed, so the server cannot push the rest.
    sent = 0

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: list[str]
    ) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (64 << 10, b"y" * (64 << 10))
        for _ in range(1024):
            writer.write(piece)
            await writer.drain()
            sent += 64 << 10
        writer.write(b"0\r\n\r\n")

    async with scripted(handler) as (port, log):
        origin = Origin(f"http://127.0.0.1:{port}", "t", max_response_bytes=1 << 20)
        resp = await origin.request("POST", "/", b"", b"", 2)
        with pytest.raises(ProviderError) as info:
            await resp.read()
        resp.release()
        assert info.value.message == "upstream answer larger than 1 MB (t)"
        assert origin.idle == []
    assert "eof" in log
    assert sent < 16 << 20


async def test_body_at_the_limit_is_read_and_streams_are_not_limited() -> None:
    body = b"z" * 1000
    async with raw_server([ok(body), chunked(body, body)]) as st:
        origin = Origin(f"http://127.0.0.1:{st['port']}", "t", max_response_bytes=1000)
        assert await get(origin) == (200, body)
        resp = await origin.request("POST", "/", b"", b"", 2)
        assert b"".join([c async for c in resp.chunks()]) == body * 2
        resp.release()
        assert len(origin.idle) == 1
        origin.close()


async def test_endless_head_and_endless_1xx_fail() -> None:
    # Neither may make the client keep bytes (or parse) without end.
    pad = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (200 << 10)
    interims = b"HTTP/1.1 100 Continue\r\n\r\n" * 17 + ok(b"late")
    for answer, message in (
        (pad, "upstream answer head too large (t)"),
        (interims, "upstream sent too many 1xx (t)"),
    ):
        async with raw_server([answer]) as st:
            origin = Origin(f"http://127.0.0.1:{st['port']}", "t")
            with pytest.raises(ProviderError) as info:
                await asyncio.wait_for(get(origin), 2)
            assert info.value.failure is Failure.MALFORMED
            assert info.value.message == message
            assert origin.idle == []
