"""The benchmark's world: sizes, upstreams, routers and request bodies, started together.

:class:`Bench` starts the upstreams (nginx or the Python fallback, plus the Python
streaming upstream) and every router instance the sections need, all in parallel, and
stops all of them on :meth:`Bench.close`.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import nginx, router
from bench.loadgen import Driver, pick
from bench.procs import Procs, free_port, tree_rss, wait_port
from bench.router import BREAKER_HEALTH, LENIENT_HEALTH, RouterProc, RouterSpec

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    """How long and how much each section runs."""

    duration_s: float
    max_requests: int | None
    concurrencies: tuple[int, ...]
    prompt_duration_s: float
    prompt_tokens: tuple[int, ...]
    streams: int
    chunks: int
    interval_ms: float
    failover_duration_s: float
    memory_total: int
    memory_step: int
    memory_conns: int

    @classmethod
    def full(cls) -> Sizes:
        """About five minutes of load in all."""
        return cls(
            duration_s=8,
            max_requests=None,
            concurrencies=(1, 16, 64),
            prompt_duration_s=5,
            prompt_tokens=(1_000, 10_000, 100_000),
            streams=100,
            chunks=20,
            interval_ms=5.0,
            failover_duration_s=4,
            memory_total=100_000,
            memory_step=10_000,
            memory_conns=16,
        )

    @classmethod
    def smoke(cls) -> Sizes:
        """Seconds: every code path once, numbers meaningless."""
        return dataclasses.replace(
            cls.full(),
            duration_s=1,
            max_requests=200,
            prompt_duration_s=1,
            streams=4,
            chunks=4,
            interval_ms=2.0,
            failover_duration_s=1,
            memory_total=2_000,
            memory_step=500,
        )


def chat_body(model: str, content: str, *, stream: bool = False) -> bytes:
    """A Chat Completions request body."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": content},
        ],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def prompt_text(tokens: int) -> str:
    """About ``tokens`` tokens of text (four characters a token), with line breaks."""
    words = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "again")
    out: list[str] = []
    size = 0
    i = 0
    while size < tokens * 4:
        w = words[i % len(words)] + ("\n" if i % 17 == 16 else " ")
        out.append(w)
        size += len(w)
        i += 1
    return "".join(out)


class Bench:
    """Everything a run needs; use as a context manager."""

    def __init__(self, sizes: Sizes, *, force_python: bool, with_litellm: bool) -> None:
        self.sizes = sizes
        self.workdir = Path(tempfile.mkdtemp(prefix="modelrouter-bench-"))
        self.procs = Procs(self.workdir)
        self.driver: Driver = pick(force_python, self.workdir)
        self.nginx_bin = None if force_python else nginx.available()
        self.with_litellm = with_litellm
        self.routers: dict[str, RouterProc] = {}
        self.tools: dict[str, str] = {}
        self.idle_rss: dict[str, float] = {}
        self.fixed_port = self.stream_port = 0

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process and remove the temp dir."""
        try:
            self.procs.close()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def body_file(self, name: str, data: bytes) -> Path:
        """Write a request body into the temp dir."""
        path = self.workdir / f"body-{name}.json"
        path.write_bytes(data)
        return path

    def start(self) -> None:
        """Start upstreams, then every router in parallel, and wait for all of them."""
        s = self.sizes
        self.stream_port = free_port()
        py_up = [sys.executable, "-m", "bench.upstream", "--port", str(self.stream_port)]
        py_up += ["--chunks", str(s.chunks), "--interval-ms", str(s.interval_ms)]
        env = {"PYTHONPATH": str(REPO)}
        up = self.procs.start("py-upstream", py_up, env=env)
        wait_port(self.stream_port, 20, up)
        if self.nginx_bin:
            self.fixed_port = nginx.start(self.procs, self.workdir, self.nginx_bin)
            self.tools["upstream"] = nginx.version(self.nginx_bin)
        else:
            self.fixed_port = self.stream_port
            self.tools["upstream"] = "python asyncio upstream (nginx not found)"
        self.tools["streaming_upstream"] = "python asyncio upstream"
        self.tools["load"] = self.driver.version()
        specs = self.router_specs()
        started = [router.start(self.procs, self.workdir, spec) for spec in specs]
        router.wait_ready(self.procs, started)
        self.routers = {r.spec.name: r for r in started}
        self.idle_rss = {r.spec.name: tree_rss(r.proc.pid).rss_mb for r in started}

    def router_specs(self) -> list[RouterSpec]:
        """One router per distinct setting the sections compare."""
        fixed = f"http://127.0.0.1:{self.fixed_port}/v1"
        main = RouterSpec(
            "main",
            providers={"up": fixed, "sup": f"http://127.0.0.1:{self.stream_port}/v1"},
            models={"fixed": "up", "streamer": "sup"},
            routes={"bench": ["fixed"], "bench-stream": ["streamer"]},
        )
        fail_providers = {
            "good": fixed,
            "refused": f"http://127.0.0.1:{free_port()}/v1",
            "err": f"http://127.0.0.1:{self.fixed_port}/err/v1",
        }
        fail_models = {"good": "good", "refused": "refused", "err": "err"}
        fail_routes = {
            "only-good": ["good"],
            "refused-first": ["refused", "good"],
            "err-first": ["err", "good"],
        }

        def failover(name: str, retries: int, health: Mapping[str, int | float]) -> RouterSpec:
            return RouterSpec(
                name,
                fail_providers,
                fail_models,
                fail_routes,
                router={"retries_per_model": retries},
                health=health,
            )

        return [
            main,
            RouterSpec("workers2", main.providers, main.models, main.routes, workers=2),
            RouterSpec("nolog", main.providers, main.models, main.routes, access_log=False),
            RouterSpec("memory", main.providers, main.models, main.routes),
            failover("fail-r1", 1, LENIENT_HEALTH),
            failover("fail-r0", 0, LENIENT_HEALTH),
            failover("breaker", 1, BREAKER_HEALTH),
        ]

    def environment(self) -> dict[str, Any]:
        """Machine and tool facts for the results file."""
        import os

        import modelrouter

        return {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "modelrouter": modelrouter.__version__,
            "tools": dict(self.tools),
            "loadavg_at_start": list(os.getloadavg()),
        }
