"""Three ``modelrouter serve`` replicas sharing one Redis count a key's rpm as one.

Each replica is a real process with the key in its config; the client is the real
``openai`` SDK, spreading concurrent requests over the three. The Redis is a private
``redis-server``, so the config keys' counters (named by key, not by test) meet no one.
The limiter rides on each replica's cluster link: its counters live under the
cluster's namespace, and ``/health`` shows its state beside the link's.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import openai
import pytest
import redis as sync_redis

from tests.governance.shared.redis_service import OwnRedis
from tests.store.helpers import wait_until
from tests.subproc import CLI, child_env, free_port

SECRET = "mr-e2e-shared-limit-secret"
WARM = "mr-e2e-warm-up-secret"
"""A key of its own for warming each replica up (connections, scripts, first
requests), so that the burst measures counting, not a cold start on a busy machine."""
CONFIG = """
[providers.sim]
kind = "simulated"
latency_ms = 2

[models.m]
provider = "sim"

[routes.default]
models = ["m"]

[store]
url = "none"

[keys.ci]
key = "{secret}"
rpm = 10

[keys.warm]
key = "{warm}"
rpm = 1000

[cluster]
redis_url = "{redis}"
on_redis_error = "local"
namespace = "e2e"
"""


@contextmanager
def replica(tmp: Path, name: str) -> Iterator[str]:
    """One ``modelrouter serve`` with the shared config; yields its base URL."""
    port = free_port()
    log = tmp / f"{name}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(tmp / "modelrouter.toml"), "--port", str(port)],
            cwd=tmp,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx2.get(base + "/healthz", timeout=1).status_code == 200
        except httpx2.HTTPError:
            return False

    try:
        wait_until(ready, timeout=30, what=f"replica {name} to start")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def warm_up(bases: list[str]) -> None:
    for b in bases:
        async with openai.AsyncOpenAI(base_url=f"{b}/v1", api_key=WARM, max_retries=0) as c:
            for _ in range(3):
                await c.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": "warm"}]
                )


async def ask_all(bases: list[str], n: int) -> list[object]:
    clients = [openai.AsyncOpenAI(base_url=f"{b}/v1", api_key=SECRET, max_retries=0) for b in bases]

    async def one(i: int) -> object:
        c = clients[i % len(clients)]
        try:
            return await c.chat.completions.with_raw_response.create(
                model="default", messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=5
            )
        except openai.RateLimitError as err:
            return err

    try:
        return await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for c in clients:
            await c.close()


@pytest.mark.timeout(120)
def test_three_replicas_admit_exactly_the_keys_rpm(tmp_path: Path) -> None:
    redis = OwnRedis()
    redis.start()
    try:
        (tmp_path / "modelrouter.toml").write_text(
            CONFIG.format(secret=SECRET, warm=WARM, redis=redis.url)
        )
        with ExitStack() as stack:
            bases = [stack.enter_context(replica(tmp_path, f"r{i}")) for i in range(3)]
            asyncio.run(warm_up(bases))
            results = asyncio.run(ask_all(bases, 30))
            healths = [
                httpx2.get(b + "/health", headers={"authorization": f"Bearer {WARM}"}).json()
                for b in bases
            ]
            counters = sync_redis.from_url(redis.url).keys("*")
    finally:
        redis.stop()
    ok = [r for r in results if not isinstance(r, openai.RateLimitError)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(ok) == 10 and len(refused) == 20
    assert {r.code for r in refused} == {"rate_limit_exceeded"}
    assert all(r.response.headers["retry-after"] == "6" for r in refused)
    headers = [r.headers for r in ok]  # type: ignore[attr-defined]
    assert {h["x-ratelimit-limit-requests"] for h in headers} == {"10"}
    # one counter: each admitted request saw the ones before it, whichever replica
    assert sorted(int(h["x-ratelimit-remaining-requests"]) for h in headers) == list(range(10))
    for h in healths:
        limits = h["cluster"]["limits"]
        assert (limits["backend"], limits["redis"], limits["mode"]) == ("redis", "ok", "shared")
        assert limits["fallbacks"] == 0 and limits["owed_usd"] == 0
    rates = {k.decode() for k in counters if k.endswith(b":rate")}
    # the key's and the warm-up key's buckets, under the namespace, and nothing else
    assert len(rates) == 2 and all(k.startswith("modelrouter:v1:e2e:lim1:") for k in rates)
