"""modelrouter instances for the benchmark: TOML configs in a temp dir, ``serve`` processes.

Every config sets ``health.probe = "none"`` and ``server.api_keys = []``; the access
log (stderr) goes to a file next to the config, as it would in production, and the
call log to a SQLite file of each router's own (the default) unless the spec names
another store.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Procs, children, free_port, http_get, wait_http

LENIENT_HEALTH: dict[str, int | float] = {
    "failure_threshold": 1_000_000_000,
    "min_requests": 1_000_000_000,
    "window_s": 0.000001,
}
"""Health settings that never demote a failing model, so every request pays for trying
it first (the cost before a breaker opens, made steady)."""
BREAKER_HEALTH: dict[str, int | float] = {"failure_threshold": 3, "open_s": 86_400}
"""Three failures open the breaker, which then stays open for the whole run."""


@dataclass
class RouterSpec:
    """What one router instance serves: providers (name → base URL), models, routes."""

    name: str
    providers: Mapping[str, str]
    models: Mapping[str, str]
    """model name → provider name (the upstream id is always ``bench-model``)."""
    routes: Mapping[str, Sequence[str]]
    router: Mapping[str, int | float] = field(default_factory=dict)
    health: Mapping[str, int | float] = field(default_factory=dict)
    workers: int = 1
    access_log: bool = True
    store: str = ""
    """``[store] url``; empty: the default call log, a SQLite file of this router's own."""
    admin_keys: Sequence[str] = ()


@dataclass
class RouterProc:
    """A started router: its port and process (the uvicorn supervisor with workers)."""

    spec: RouterSpec
    port: int
    proc: subprocess.Popen[bytes]


def _toml_value(v: object) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def config_toml(spec: RouterSpec) -> str:
    """The TOML config of ``spec``."""
    lines = ["[server]", "api_keys = []", "drain_s = 1"]
    lines += [f"admin_keys = {_toml_value(list(spec.admin_keys))}", "", "[router]"]
    lines.append(f"default_route = {_toml_value(next(iter(spec.routes)))}")
    lines += [f"{k} = {_toml_value(v)}" for k, v in spec.router.items()]
    lines += ["", "[health]", 'probe = "none"']
    lines += [f"{k} = {_toml_value(v)}" for k, v in spec.health.items()]
    for name, url in spec.providers.items():
        lines += ["", f"[providers.{name}]", 'kind = "openai"', f"base_url = {_toml_value(url)}"]
        lines.append('api_key = "bench"')
    for name, provider in spec.models.items():
        lines += ["", f"[models.{name}]", f"provider = {_toml_value(provider)}"]
        lines.append('model = "bench-model"')
    for name, models in spec.routes.items():
        lines += ["", f"[routes.{name}]", f"models = {_toml_value(list(models))}"]
    store = spec.store or f"sqlite:///router-{spec.name}.db"
    lines += ["", "[store]", f"url = {_toml_value(store)}"]
    return "\n".join(lines) + "\n"


def start(procs: Procs, workdir: Path, spec: RouterSpec) -> RouterProc:
    """Write the config and start ``modelrouter serve`` (not yet waited for)."""
    cfg = workdir / f"router-{spec.name}.toml"
    cfg.write_text(config_toml(spec))
    port = free_port()
    module = "modelrouter.cli" if spec.access_log else "bench.nolog"
    argv = [sys.executable, "-m", module, "serve", "--config", str(cfg), "--port", str(port)]
    if spec.workers > 1:
        argv += ["--workers", str(spec.workers)]
    # The access log is one JSON line per request on stderr: write it to a file.
    stderr = str(workdir / f"router-{spec.name}.stderr")
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}  # for bench.nolog
    proc = procs.start(f"router-{spec.name}", argv, env=env, stderr_to=stderr)
    return RouterProc(spec, port, proc)


def wait_ready(procs: Procs, routers: Sequence[RouterProc], timeout: float = 60) -> None:
    """Wait until every router answers ``/healthz`` (and its workers are up)."""
    for r in routers:
        try:
            wait_http(f"http://127.0.0.1:{r.port}/healthz", timeout, r.proc)
        except (RuntimeError, TimeoutError) as err:
            tail = procs.log_tail(f"router-{r.spec.name}.stderr")
            raise RuntimeError(f"router {r.spec.name} did not start: {err}\n{tail}") from None
    if any(r.spec.workers > 1 for r in routers):
        _wait_workers(routers)


def _wait_workers(routers: Sequence[RouterProc]) -> None:
    """Workers import the app one by one; /healthz from the first is not all of them."""
    for r in routers:
        if r.spec.workers < 2:
            continue
        deadline = time.monotonic() + 30
        while len(children(r.proc.pid)) < r.spec.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        # Enough requests that every worker has answered at least one.
        for _ in range(50 * r.spec.workers):
            http_get(f"http://127.0.0.1:{r.port}/healthz")
        time.sleep(0.5)
