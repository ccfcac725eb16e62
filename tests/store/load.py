"""Bounded request load for the fault tests: threads posting chats until told to stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx2

BODY = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}
KEY = "sk-load-key"
"""The key every load request sends. Configs of routers whose store may be down at
start list it in ``server.api_keys``: until a store's keys are read, only such keys
are accepted (the router cannot know that no virtual key exists)."""
CUT = -1
"""The status noted for a stream that began but did not end with ``[DONE]``."""


@dataclass
class Load:
    """Threads sending chat requests to ``base`` (every ``stream_every``-th one streams)."""

    base: str
    threads: int = 8
    stream_every: int = 4
    max_seconds: float = 30.0
    keepalive: bool = True
    """False: a new connection per request (spreads requests over worker processes)."""
    answered: dict[str, int] = field(default_factory=dict)
    """x-request-id -> status of every request that got a complete answer."""
    failures: list[str] = field(default_factory=list)
    """Requests that got no answer (connection refused or cut)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        """Start the threads."""
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        """Stop and wait for the threads."""
        self._stop.set()
        for t in self._workers:
            t.join(30)

    @property
    def count(self) -> int:
        """Requests answered so far."""
        with self._lock:
            return len(self.answered)

    def _run(self, n: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        limits = httpx2.Limits(max_keepalive_connections=None if self.keepalive else 0)
        auth = {"authorization": f"Bearer {KEY}"}
        with httpx2.Client(base_url=self.base, timeout=30, limits=limits, headers=auth) as client:
            i = 0
            while not self._stop.is_set() and time.monotonic() < deadline:
                i += 1
                stream = self.stream_every and (n + i) % self.stream_every == 0
                try:
                    rid, status = self._one(client, bool(stream))
                except httpx2.HTTPError as err:
                    with self._lock:
                        self.failures.append(type(err).__name__)
                    if isinstance(err, httpx2.ConnectError):
                        time.sleep(0.05)
                    continue
                with self._lock:
                    self.answered[rid] = status

    @staticmethod
    def _one(client: httpx2.Client, stream: bool) -> tuple[str, int]:
        body = {**BODY, "stream": True} if stream else BODY
        with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            rid = resp.headers["x-request-id"]
            try:
                data = resp.read()
            except httpx2.HTTPError:
                return rid, CUT  # begun, but cut short
            if stream and resp.status_code == 200 and not data.rstrip().endswith(b"[DONE]"):
                return rid, CUT
            return rid, resp.status_code
