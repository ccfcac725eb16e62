"""Limits on reading a request, against a real ``modelrouter serve`` over raw sockets.

Slow or oversized request heads and bodies must not hold connections (or memory)
forever; answers that take long to produce (slow upstreams, long streams) must not be
cut, since the limits bound reading the request, not writing the response.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx2
import openai
import pytest

from modelrouter.http_protocol import RequestLimits
from modelrouter.settings import ServerSettings

# Short, so the tests are quick. "Cut after the timeout" is checked as at least half
# of it (the server's clock may start before the test's) and at most 1.5 s more (a
# loaded machine), which still tells "never" and "at once" apart.
HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
CONFIG = f"""
[server]
header_timeout_s = {HEADER_TIMEOUT}
body_timeout_s = {BODY_TIMEOUT}

[health]
probe = "none"

[providers.sim]
kind = "simulated"

[providers.slow]
kind = "simulated"
latency_ms = 1500

[providers.drip]
kind = "simulated"
chunk_ms = 100
reply = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"

[models.sim]
provider = "sim"

[models.slow]
provider = "slow"

[models.drip]
provider = "drip"

[routes.default]
models = ["sim"]
"""
CHAT = b'{"model": "sim", "messages": [{"role": "user", "content": "hi"}]}'


class Server:
    """A running ``modelrouter serve``: its port and process id."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.host = f"127.0.0.1:{port}".encode()

    def reset_peak_memory(self) -> None:
        """Start the peak (VmHWM) over from the current resident memory."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak_memory_kb(self) -> int:
        """The server's peak resident memory since the last reset."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(config: Path, *args: str) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    cmd = [sys.executable, "-m", "modelrouter.cli", "serve", "--config", str(config)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group, so one kill also ends --workers' worker processes.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with suppress(httpx2.HTTPError):
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        yield Server(proc, port)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "modelrouter.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def server(config_file: Path) -> Iterator[Server]:
    with serve(config_file) as s:
        yield s


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def post_head(server: Server, length: int, path: bytes = b"/v1/chat/completions") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: " + server.host + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n"
    )


def get_head(server: Server, extra: bytes = b"", path: bytes = b"/healthz") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: " + server.host + b"\r\n" + extra + b"\r\n"


def read_to_close(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes (a reset counts as a close)."""
    sock.settimeout(timeout)
    data = b""
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


class Responses:
    """Reads responses with a Content-Length body off one connection, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"closed after {self.buffer!r}"
        self.buffer += chunk

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers, body."""
        self.sock.settimeout(10)
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The one response to a lone request."""
    return Responses(sock).next()


def error_of(response: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"connection: close" in head.lower()
    err: dict[str, str] = json.loads(body)["error"]
    return status, err


def drip(sock: socket.socket, data: bytes, every: float, give_up: float) -> float:
    """Send ``data`` a byte every ``every`` s until the server answers or closes.

    Returns the seconds it took the server to answer (``give_up`` when it never did).
    """
    start = time.monotonic()
    for byte in data:
        if time.monotonic() - start > give_up:
            break
        try:
            sock.send(bytes([byte]))
        except OSError:
            break
        if select.select([sock], [], [], every)[0]:
            break
    return time.monotonic() - start


# --- slow requests are cut --------------------------------------------------------------


def test_slowloris_head_gets_408_after_the_header_timeout(server: Server) -> None:
    with connect(server) as sock:
        took = drip(sock, post_head(server, len(CHAT)), every=0.2, give_up=4)
        response = read_to_close(sock)
    assert HEADER_TIMEOUT / 2 <= took < HEADER_TIMEOUT + 1.5, took
    status, err = error_of(response)
    assert status == 408
    assert err["code"] == "request_timeout"


def test_silent_connection_is_closed_after_the_header_timeout(server: Server) -> None:
    with connect(server) as sock:
        start = time.monotonic()
        assert read_to_close(sock, timeout=4) == b""
        took = time.monotonic() - start
    assert HEADER_TIMEOUT / 2 <= took < HEADER_TIMEOUT + 1.5, took


def test_body_that_never_comes_gets_408_after_the_body_timeout(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(server, len(CHAT)) + CHAT[:10])
        start = time.monotonic()
        response = read_to_close(sock, timeout=4)
        took = time.monotonic() - start
    assert BODY_TIMEOUT / 2 <= took < BODY_TIMEOUT + 1.5, took
    status, err = error_of(response)
    assert status == 408
    assert "body" in err["message"]


def test_dripped_body_gets_408_after_the_body_timeout(server: Server) -> None:
    # The body timeout bounds the whole body, not the gaps: a byte every 0.1 s is
    # well inside any gap limit and would hold the connection for minutes.
    body = CHAT + b" " * 2000
    with connect(server) as sock:
        sock.sendall(post_head(server, len(body)))
        took = drip(sock, body, every=0.1, give_up=4)
        response = read_to_close(sock)
    assert BODY_TIMEOUT / 2 <= took < BODY_TIMEOUT + 1.5, took
    assert error_of(response)[0] == 408


def test_workers_use_the_same_limits(config_file: Path) -> None:
    with serve(config_file, "--workers", "2") as s, connect(s) as sock:
        took = drip(sock, post_head(s, len(CHAT)), every=0.2, give_up=4)
        response = read_to_close(sock)
    assert took < HEADER_TIMEOUT + 1.5, took
    assert error_of(response)[0] == 408


# --- oversized heads are refused ----------------------------------------------------------


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    def send() -> None:
        with suppress(OSError):
            sock.sendall(data)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_16_mb_header_is_refused_quickly_in_little_memory(server: Server) -> None:
    server.reset_peak_memory()
    before = server.peak_memory_kb()
    big = get_head(server, b"X-Big: " + b"a" * (16 * 1024 * 1024) + b"\r\n")
    with connect(server) as sock:
        start = time.monotonic()
        sender = send_in_background(sock, big)
        response = read_to_close(sock, timeout=10)
        took = time.monotonic() - start
        sender.join(10)
    assert took < 3, took
    # The refusal may be lost if the server stops reading first, but it must not accept.
    assert response == b"" or error_of(response)[0] == 431
    grown_mb = (server.peak_memory_kb() - before) / 1024
    assert grown_mb < 8, grown_mb
    assert httpx2.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200


def test_100000_headers_get_431(server: Server) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))
    with connect(server) as sock:
        sender = send_in_background(sock, get_head(server, many))
        response = read_to_close(sock, timeout=10)
        sender.join(10)
    status, err = error_of(response)
    assert status == 431
    assert err["code"] == "request_header_fields_too_large"


def test_header_count_limit_is_exact(server: Server) -> None:
    # Host is one of them: 100 headers in all pass, 101 do not.
    for extra, expected in ((99, 200), (100, 431)):
        lines = b"".join(b"X-H%d: v\r\n" % i for i in range(extra))
        with connect(server) as sock:
            sock.sendall(get_head(server, lines))
            status, _, _ = read_response(sock)
        assert status == expected, extra


def test_header_size_limit(server: Server) -> None:
    for size_kb, expected in ((60, 200), (70, 431)):
        line = b"X-Big: " + b"a" * (size_kb * 1024) + b"\r\n"
        with connect(server) as sock:
            sock.sendall(get_head(server, line))
            status, _, _ = read_response(sock)
        assert status == expected, size_kb


# --- what must keep working ----------------------------------------------------------------


def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x", max_retries=0, timeout=20
    )


MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "hello"}
]


def test_slow_upstream_answer_is_not_cut(server: Server) -> None:
    start = time.monotonic()
    done = client(server).chat.completions.create(model="slow", messages=MESSAGES)
    assert time.monotonic() - start > 2 * max(HEADER_TIMEOUT, BODY_TIMEOUT)
    assert "hello" in (done.choices[0].message.content or "")


def test_long_stream_is_not_cut(server: Server) -> None:
    start = time.monotonic()
    stream = client(server).chat.completions.create(model="drip", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert time.monotonic() - start > 2 * max(HEADER_TIMEOUT, BODY_TIMEOUT)
    assert text.endswith("fourteen")


def test_large_body_arrives_whole(server: Server) -> None:
    big: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "x" * (4 * 1024 * 1024) + " end"}
    ]
    done = client(server).chat.completions.create(model="sim", messages=big)
    assert (done.choices[0].message.content or "").startswith("Hello from sim")


def test_keep_alive_idle_longer_than_header_timeout_still_serves(server: Server) -> None:
    # The header timeout starts at a request's first byte: an idle pooled connection is
    # uvicorn's keep-alive timeout's business (5 s), as before.
    with connect(server) as sock:
        responses = Responses(sock)
        for _ in range(2):
            sock.sendall(post_head(server, len(CHAT)) + CHAT)
            status, _, _ = responses.next()
            assert status == 200
            time.sleep(HEADER_TIMEOUT * 2)


def test_body_in_parts_within_the_timeout_passes(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(server, len(CHAT)))
        for part in (CHAT[:20], CHAT[20:40], CHAT[40:]):
            time.sleep(BODY_TIMEOUT / 5)
            sock.sendall(part)
        status, _, body = read_response(sock)
    assert status == 200, body


def test_pipelined_body_waiting_behind_a_slow_answer_is_not_cut(server: Server) -> None:
    # The second request's large body stops being read (the server's buffer is full and
    # its handler has not started) while the server answers the first, for longer than
    # the body timeout: that wait is the server's, not the client's.
    slow = b'{"model": "slow", "messages": [{"role": "user", "content": "hi"}]}'
    big = b'{"model": "sim", "messages": [{"role": "user", "content": "%s"}]}' % (b"x" * 500_000)
    with connect(server) as sock:
        sender = send_in_background(
            sock, post_head(server, len(slow)) + slow + post_head(server, len(big)) + big
        )
        responses = Responses(sock)
        first = responses.next()
        second = responses.next()
        sender.join(10)
    assert first[0] == 200
    assert b"slow" in first[2]
    assert second[0] == 200


def test_partial_next_head_waits_for_a_slow_answer(server: Server) -> None:
    # A pipelining client starts its next request while the first is still handled
    # (longer than the header timeout): the first answer must arrive whole and first.
    slow = b'{"model": "slow", "messages": [{"role": "user", "content": "hi"}]}'
    with connect(server) as sock:
        sock.sendall(post_head(server, len(slow)) + slow + b"GET /healthz HTTP/1.1\r\nHo")
        responses = Responses(sock)
        status, _, body = responses.next()
        start = time.monotonic()
        # The 408 may come in the same read as the end of the answer (the head timer,
        # re-armed every HEADER_TIMEOUT while the slow answer is made, can fire just
        # after it), so it can already be in the reader's buffer.
        rest = responses.buffer + read_to_close(sock)
        took = time.monotonic() - start
    assert status == 200
    assert b"slow" in body
    # Then the unfinished head gets its own timeout.
    assert error_of(rest)[0] == 408
    assert took < HEADER_TIMEOUT + 1.5


def test_limits_come_from_server_settings() -> None:
    limits = RequestLimits.of(
        ServerSettings(header_timeout_s=3, body_timeout_s=7, max_header_kb=8, max_headers=20)
    )
    assert limits == RequestLimits(3, 7, 8 * 1024, 20)
