"""Several ``modelrouter serve`` processes on loopback sharing one config: replicas.

Each gets its own free port, so its instance name is ``127.0.0.1:PORT``; stderr goes
to a file per replica (a pipe nobody reads would fill up and block the server).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import orjson
from aiohttp import web

from tests.fakes.upstream import FakeUpstream, error_body
from tests.subproc import CLI, child_env, free_port

BODY: dict[str, Any] = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Replica:
    """One running router process."""

    proc: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance(self) -> str:
        """Its default instance name."""
        return f"127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        report: dict[str, Any] = httpx2.get(self.base + "/health", timeout=5).json()
        return report

    def chat(self, **extra: Any) -> httpx2.Response:
        """One chat completion on the default route (``extra``: more body members)."""
        body = {**BODY, **extra}
        return httpx2.post(self.base + "/v1/chat/completions", json=body, timeout=30)

    def notes(self) -> list[str]:
        """Its stderr lines that are not access-log JSON."""
        return [ln for ln in self.log.read_text().splitlines() if not ln.startswith("{")]


def start_replica(config: Path, workdir: Path, name: str, port: int | None = None) -> Replica:
    """``modelrouter serve --config CONFIG --port PORT``, ready (``/healthz`` answers)."""
    port = port or free_port()
    log = workdir / f"{name}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(config), "--port", str(port)],
            cwd=workdir,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    replica = Replica(proc, port, log)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"{name} exited: {log.read_text()}"
        try:
            if httpx2.get(replica.base + "/healthz", timeout=1).status_code == 200:
                return replica
        except httpx2.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{name} did not start: {log.read_text()}"
        time.sleep(0.05)


def stop(replica: Replica, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` and wait for the process to end."""
    if replica.proc.poll() is None:
        replica.proc.send_signal(sig)
        try:
            replica.proc.wait(30)
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait(10)


@contextmanager
def replicas(config: Path, workdir: Path, n: int) -> Iterator[list[Replica]]:
    """``n`` replicas of ``config``; all stopped (SIGTERM) at the end."""
    started: list[Replica] = []
    try:
        for i in range(n):
            started.append(start_replica(config, workdir, f"replica{i}"))
        yield started
    finally:
        for r in started:
            stop(r)


class TimedUpstream(FakeUpstream):
    """A fake upstream that notes when each probe (``GET /v1/models``) came, and fails
    the chats whose ``user`` member is :attr:`fail_user` (as sent through one replica)."""

    def __init__(self, name: str = "fake", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.probe_times: list[float] = []
        self.fail_user: str | None = None
        self.failed = 0

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.probe_times.append(time.monotonic())
        return await super()._models(request)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if self.fail_user is not None:
            body = orjson.loads(await request.read())  # aiohttp keeps the body for later
            if isinstance(body, dict) and body.get("user") == self.fail_user:
                self.failed += 1
                return self._json(error_body("fake outage", "server_error"), 500)
        return await super()._chat(request)


@dataclass
class Load:
    """Threads sending chats round-robin to replicas until stopped (bounded in time)."""

    targets: list[Replica]
    threads: int = 4
    max_seconds: float = 30.0
    results: list[tuple[float, str, int, str, float]] = field(default_factory=list)
    """(start time, replica instance, status, served model, seconds) per request."""
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(30)

    def since(self, t: float) -> list[tuple[float, str, int, str, float]]:
        """Requests that started at or after ``t``."""
        with self._lock:
            return [r for r in self.results if r[0] >= t]

    def _run(self, n: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        clients = [httpx2.Client(base_url=r.base, timeout=30) for r in self.targets]
        i = n
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                i += 1
                target = self.targets[i % len(self.targets)]
                start = time.monotonic()
                try:
                    resp = clients[i % len(clients)].post("/v1/chat/completions", json=BODY)
                except httpx2.HTTPError as err:
                    with self._lock:
                        self.errors.append(f"{target.instance}: {err!r}")
                    continue
                took = time.monotonic() - start
                model = resp.headers.get("x-modelrouter-model", "")
                with self._lock:
                    self.results.append((start, target.instance, resp.status_code, model, took))
        finally:
            for c in clients:
                c.close()
