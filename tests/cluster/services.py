"""Redis servers of the cluster tests' own: ``redis-server`` on a free loopback port.

A test that stops, hangs or restarts Redis cannot do it to a Redis others use, so
every test that needs Redis starts its own (no disk: ``--save ''``, no AOF). Tests
skip, saying why, when ``redis-server`` is not installed, unless
``MODELROUTER_REQUIRE_SERVICES=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
import redis

from tests.subproc import free_port


def require(binary: str) -> str:
    """The path of ``binary``; skip (or, in CI, fail) when it is not installed."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        reason = f"{binary} is not installed (Debian: apt-get install {binary})"
        if os.environ.get("MODELROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and MODELROUTER_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return path


def namespace() -> str:
    """A cluster namespace no other test run uses."""
    return "t" + uuid.uuid4().hex[:10]


class RedisServer:
    """One ``redis-server`` process: start, stop (any signal), pause, restart."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require("redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A synchronous client for the test's own checks."""
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def start(self) -> Self:
        """Start (again, on the same port) and wait until it answers."""
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start: " + self._log())
            time.sleep(0.05)

    def kill(self) -> None:
        """Stop it hard (SIGKILL): connections drop, nothing is saved."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def _log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        if self.proc is not None:
            self.resume()
        self.kill()
