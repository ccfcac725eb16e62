"""The Redis servers the shared-counter tests use.

* The machine's Redis at 127.0.0.1:6379, shared with other test runs: every test names
  its keys under a namespace of its own (:func:`namespace`), so runs never collide, and
  never runs a command that touches other keys (no FLUSH, no SCRIPT FLUSH).
* A private ``redis-server`` on a free port (:class:`OwnRedis`) for the tests that
  kill, pause or flush it.

Either skips, saying why, when it cannot be had, unless ``MODELROUTER_REQUIRE_SERVICES=1``
(CI), which turns the skip into a failure (as ``tests/store/services.py`` does).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from tests.subproc import free_port

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _unavailable(reason: str) -> None:
    if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and MODELROUTER_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def _answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((REDIS_HOST, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> str:
    """The shared Redis's URL; skip (or, in CI, fail) when it does not answer."""
    if not _answers(REDIS_PORT):
        _unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT} does not answer")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def namespace() -> str:
    """A key namespace no other test (or test run) uses."""
    return f"mrtest-{uuid.uuid4().hex[:12]}"


class OwnRedis:
    """A ``redis-server`` of this test's own, without persistence, that it may kill."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            _unavailable("redis-server is not installed")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{REDIS_HOST}:{self.port}/0"

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it answers."""
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", REDIS_HOST),
                *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill it (SIGKILL: no goodbye to the clients) and wait until it is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        """Freeze it: connections stay open, nothing answers (a hung server)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """End it for good (resumed first, if paused)."""
        if self.proc is not None:
            self.resume()
        self.kill()
