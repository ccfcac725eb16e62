"""``modelrouter serve --workers 2`` as a real process: whichever worker answers a
scrape, the totals are those of both; a worker killed and restarted loses no count;
the shared directory is gone when the server stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2

from modelrouter import config as config_mod
from tests.fakes.upstream import FakeUpstream
from tests.observe.mix import KEY_PLAIN, KEY_TEAM, UNKNOWN, Mix, router_tables
from tests.observe.scrape import Samples, label_values, nonzero, scrape
from tests.store.helpers import wait_until
from tests.subproc import CLI, child_env, free_port

COUNTERS = (
    "modelrouter_requests_total",
    "modelrouter_attempts_total",
    "modelrouter_fallbacks_total",
    "modelrouter_tokens_total",
    "modelrouter_request_duration_seconds_count",
    "modelrouter_ttft_seconds_count",
)


def toml(tables: dict[str, Any]) -> str:
    """The config file of ``tables`` (JSON literals are valid TOML for these values)."""
    lines: list[str] = []
    for section, body in tables.items():
        nested = all(isinstance(v, dict) for v in body.values()) and body
        for name, table in body.items() if nested else [(None, body)]:
            lines.append(f"[{section}.{name}]" if name else f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def serve(tmp: Path, workers: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    with (tmp / "serve.log").open("w") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(tmp / "modelrouter.toml"), "--port", str(port),
             "--workers", str(workers)],
            cwd=tmp, env=child_env(), stdout=subprocess.DEVNULL, stderr=log, text=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp / "serve.log").read_text()
        try:
            return httpx2.get(base + "/healthz", timeout=1).status_code == 200
        except httpx2.HTTPError:
            return False

    try:
        wait_until(ready, timeout=30, what="the server to start")
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def metrics_dir(proc: subprocess.Popen[str]) -> Path:
    """The directory ``serve`` made, read from a worker's environment."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for child in children:
        for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"MODELROUTER_METRICS_DIR="):
                return Path(item.split(b"=", 1)[1].decode())
    raise AssertionError("no worker names a metrics directory")


def worker_pids(directory: Path) -> set[int]:
    return {int(p.name.split("-")[0]) for p in directory.glob("*.values")}


def check(samples: Samples, mix: Mix) -> None:
    for name in COUNTERS:
        assert nonzero(samples, name) == mix.expected.of(name), name
    assert samples.get("modelrouter_breaker_transitions_total", {}) == {}
    assert UNKNOWN not in label_values(samples)


def scrapes(base: str, mix: Mix) -> None:
    """Eight scrapes, four at a time (so both workers answer some), all exact."""
    with ThreadPoolExecutor(4) as pool:
        for samples in pool.map(lambda _: scrape(base), range(8)):
            check(samples, mix)


def test_two_workers_count_as_one(
    tmp_path: Path, primary: FakeUpstream, backup: FakeUpstream, up: FakeUpstream
) -> None:
    tables = router_tables(primary, backup, up)
    tables["router"] = {"retries_per_model": 0}
    # Each worker has its own health: no breaker may open, and no model may be ranked
    # down as degraded (half the error-rate threshold over at least 5 calls), or the mix
    # would depend on which worker took which failure.
    tables["health"] = {
        "probe": "none",
        "failure_threshold": 1000,
        "min_requests": 1000,
        "error_rate_threshold": 1.0,
    }
    tables["store"] = {"url": "none"}
    cfg = tmp_path / "modelrouter.toml"
    cfg.write_text(toml(tables))
    models = config_mod.load(str(cfg)).settings.models
    with serve(tmp_path, 2) as (proc, base):
        directory = metrics_dir(proc)
        assert directory.is_dir() and oct(directory.stat().st_mode & 0o777) == "0o700"
        mix = Mix(base, models, keepalive=False)
        try:
            # Requests in parallel until both workers have answered enough that the
            # three failures below stay under the degraded share (50 %) on either: one
            # worker alone may win every connection of a sequential client.
            deadline = time.monotonic() + 30
            with ThreadPoolExecutor(8) as pool:
                while not _both_answered(mix.request_ids, at_least=8):
                    assert time.monotonic() < deadline, "one worker took every request"
                    keys = [KEY_TEAM if i % 2 else KEY_PLAIN for i in range(16)]
                    list(pool.map(mix.chat, keys))
            for i in range(4):
                mix.stream(KEY_TEAM if i % 2 else KEY_PLAIN)
            for _ in range(3):
                mix.fallback(KEY_TEAM, primary)
            mix.chat(KEY_PLAIN, model="b", route="adhoc", served="b", extra_body={"models": ["a"]})
            mix.rate_limited(up)
            mix.unknown_model()
            mix.bad_key()
        finally:
            mix.close()
        # Both workers answered requests (each has its own request-id prefix), and every
        # scrape, whichever worker answers it, has both workers' counts.
        scrapes(base, mix)

        # A worker dies (uvicorn starts another): what it counted still counts.
        before = worker_pids(directory)
        assert len(before) == 2
        os.kill(min(before), signal.SIGKILL)
        wait_until(lambda: len(worker_pids(directory) - before) == 1, timeout=30,
                   what="a new worker")  # fmt: skip
        wait_until(lambda: _serves(base), timeout=30, what="the new worker to serve")
        scrapes(base, mix)

        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert not directory.exists()


def _both_answered(request_ids: list[str], *, at_least: int) -> bool:
    """Whether two workers (request-id prefixes) answered ``at_least`` requests each."""
    per_worker = Counter(rid[:12] for rid in request_ids)
    return len(per_worker) >= 2 and min(per_worker.values()) >= at_least


def _serves(base: str) -> bool:
    time.sleep(0.2)
    try:
        return all(
            httpx2.get(base + "/healthz", timeout=1, headers={"connection": "close"}).is_success
            for _ in range(6)
        )
    except httpx2.HTTPError:
        return False
