"""``python -m bench.redis_limiter``: what the shared counters cost, per request.

Runs a ``redis-server`` of its own on a free port (no persistence), so its statistics
count nothing but this benchmark, and measures for two kinds of request:

* ``key``: one virtual key with rpm, tpm and a monthly budget (one scope);
* ``key+team``: the same key in a team with rpm, tpm and a budget (two scopes).

Limits are far above the load, so every request is admitted (the full write path).

* **latency** — :class:`RedisLimiter` ``acquire`` + ``settle`` from Python over
  loopback, N sequential and N spread over 16 concurrent tasks, p50/p99; beside it the
  same client's ``PING`` (the floor of any round trip) and one bare ``EVALSHA``.
* **redis** — Redis's own cost during those runs: ``INFO commandstats``
  (``usec_per_call`` of ``EVALSHA``: the script, inner commands included), ``INFO cpu``
  (the server process's CPU, network and parsing included), per request; and
  ``INFO stats`` ``total_net_input_bytes`` / ``total_net_output_bytes`` per request.
* **script_costs** — Redis's time per call of each script alone, sequential: acquires,
  settles of one request per call, of eight per call (``INFO commandstats``).
* **sizes** — one acquire and one settle, request and answer, in bytes on the wire (the
  RESP the client packs, the RESP the server answers).

Bounded: about 20 s on 2 cores with the default N = 10,000. Results go to
``bench/results/redis_limiter.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from bench.common import ms, percentile, run_async
from bench.procs import free_port, wait_port
from modelrouter.governance.redis_counters import acquire_args, plan, script, settle_item
from modelrouter.governance.redis_limiter import RedisLimiter
from modelrouter.governance.types import Ask, Limits, Scope

BIG = Limits(rpm=10**9, tpm=10**12, budget_usd=10.0**9)
KINDS = {
    "key": (Scope("key", "kb1", BIG),),
    "key+team": (Scope("key", "kb1", BIG), Scope("team", "research", BIG)),
}
ASK = Ask(tokens=1200, cost_usd=0.0021)


async def _stats(r: Redis) -> dict[str, float]:
    info = await r.info()
    cmd = (await r.info("commandstats")).get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return {
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "in": float(info["total_net_input_bytes"]),
        "out": float(info["total_net_output_bytes"]),
        "calls": float(cmd["calls"]),
        "usec": float(cmd["usec"]),
    }


def _delta(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    calls = after["calls"] - before["calls"]
    return {
        "evalsha_per_request": round(calls / n, 3),
        "evalsha_usec_per_call": round((after["usec"] - before["usec"]) / max(calls, 1), 2),
        "script_usec_per_request": round((after["usec"] - before["usec"]) / n, 2),
        "server_cpu_usec_per_request": round((after["cpu"] - before["cpu"]) * 1e6 / n, 2),
        "net_in_bytes_per_request": round((after["in"] - before["in"]) / n, 1),
        "net_out_bytes_per_request": round((after["out"] - before["out"]) / n, 1),
    }


async def _run(lim: RedisLimiter, scopes: tuple[Scope, ...], n: int, tasks: int) -> list[float]:
    lat: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            grant = await lim.acquire(scopes, ASK)
            lim.settle(grant, 1000, 0.0017)
            lat.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
    await lim.drain()
    lat.append(time.perf_counter() - began)  # the last entry: the wall time
    return lat


async def _floor(r: Redis, n: int, scopes: tuple[Scope, ...], ns: str) -> dict[str, float]:
    """PING and one bare EVALSHA of the acquire script, sequential: the round trip's floor."""
    pings = []
    for _ in range(n):
        started = time.perf_counter()
        await r.ping()
        pings.append(time.perf_counter() - started)
    p = plan(f"{ns}:", scopes, time.time(), 660)
    sha = script("acquire").sha
    evals = []
    for i in range(n):
        args = acquire_args(p, f"floor{i}", ASK.tokens, ASK.cost_usd, 660_000, {})
        started = time.perf_counter()
        await r.evalsha(sha, len(p.keys), *p.keys, *args)
        evals.append(time.perf_counter() - started)
    pings.sort()
    evals.sort()
    return {"ping_p50_ms": ms(percentile(pings, 50)), "evalsha_p50_ms": ms(percentile(evals, 50))}


async def _script_costs(r: Redis, scopes: tuple[Scope, ...], ns: str, n: int) -> dict[str, float]:
    """Redis's time per script call (``INFO commandstats``), one kind of call at a time:
    acquires alone, then settles one request per call, then eight per call."""
    p = plan(f"{ns}:", scopes, time.time(), 660)
    acq, stl = script("acquire").sha, script("settle").sha
    out: dict[str, float] = {}

    async def usec(calls: list[tuple[str, list[str]]]) -> float:
        before = await _stats(r)
        for sha, args in calls:
            await r.evalsha(sha, len(p.keys), *p.keys, *args)
        after = await _stats(r)
        return round((after["usec"] - before["usec"]) / max(1, after["calls"] - before["calls"]), 2)

    for group in (1, 8):
        rids = [f"cost{group}-{i}" for i in range(n)]
        acquires = [
            (acq, acquire_args(p, rid, ASK.tokens, ASK.cost_usd, 660_000, {})) for rid in rids
        ]
        out["acquire_usec_per_call"] = await usec(acquires)
        settles = []
        for i in range(0, n, group):
            items = [a for rid in rids[i : i + group] for a in settle_item(rid, 200, 0.0017)]
            settles.append((stl, [*p.specs, *items]))
        out[f"settle_{group}_usec_per_call"] = await usec(settles)
    return out


def _sizes(scopes: tuple[Scope, ...], ns: str) -> dict[str, int]:
    """RESP bytes of one acquire and one settle (answers as Redis sends them)."""
    from redis.connection import Connection

    p = plan(f"{ns}:", scopes, time.time(), 660)
    pack = Connection().pack_command
    acq = acquire_args(p, "0123456789ab1f", ASK.tokens, ASK.cost_usd, 660_000, {})
    stl = [*p.specs, *settle_item("0123456789ab1f", 200, 0.0017)]
    a = pack("EVALSHA", script("acquire").sha, len(p.keys), *p.keys, *acq)
    s = pack("EVALSHA", script("settle").sha, len(p.keys), *p.keys, *stl)
    # {1, now_ms, 1000000000, 999999999, 60, 1000000000000, 999999998800, 72}
    reply = [1, 1764576000123, 10**9, 10**9 - 1, 60, 10**12, 10**12 - 1200, 72]
    answer = f"*{len(reply)}\r\n" + "".join(f":{v}\r\n" for v in reply)
    return {
        "acquire_request": sum(len(c) for c in a),
        "acquire_answer": len(answer),
        "settle_request": sum(len(c) for c in s),
        "settle_answer": len(f":{len(scopes)}\r\n"),
    }


async def measure(port: int, n: int) -> dict[str, Any]:
    """Every measurement, against the Redis on ``port``."""
    url = f"redis://127.0.0.1:{port}/0"
    out: dict[str, Any] = {}
    for kind, scopes in KINDS.items():
        r = Redis.from_url(url)
        ns = f"bench-{uuid.uuid4().hex[:8]}"
        # "deny" and no fallback: a Redis that stopped answering fails the run; the
        # bound is 1 s, not 50 ms, so that a busy machine is measured, not refused
        lim = RedisLimiter(r, on_error="deny", prefix=f"{ns}:", timeout_s=1.0)
        await _run(lim, scopes, 500, 1)  # warm: seeds, scripts, connections
        row: dict[str, Any] = {"floor": await _floor(r, min(n, 3000), scopes, ns)}
        for label, tasks in (("sequential", 1), ("concurrent_16", 16)):
            before = await _stats(r)
            lat = await _run(lim, scopes, n, tasks)
            after = await _stats(r)
            wall = lat.pop()
            lat.sort()
            row[label] = {
                "requests": len(lat),
                "p50_ms": ms(percentile(lat, 50)),
                "p99_ms": ms(percentile(lat, 99)),
                "max_ms": ms(lat[-1]),
                "over_50ms": sum(x > 0.05 for x in lat),
                "requests_per_s": round(len(lat) / wall),
                **_delta(before, after, len(lat)),
            }
        row["script_costs"] = await _script_costs(r, scopes, ns, min(n, 4000))
        row["sizes"] = _sizes(scopes, ns)
        row["limiter"] = lim.state()
        await lim.aclose()
        await r.aclose()
        out[kind] = row
    return out


def main(argv: list[str] | None = None) -> None:
    """Start a private redis-server, measure, print and write the JSON, stop it."""
    ap = argparse.ArgumentParser(prog="python -m bench.redis_limiter")
    ap.add_argument("-n", type=int, default=10_000, help="requests per run")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port, 10, proc)
        version = subprocess.run(
            [server, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        load = os.getloadavg()
        kinds = run_async(measure(port, args.n))
        results = {
            "redis": version,
            "n": args.n,
            "cores": os.cpu_count(),
            "load_average_before_after": [round(load[0], 2), round(os.getloadavg()[0], 2)],
            "kinds": kinds,
        }
    finally:
        proc.terminate()
        proc.wait()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "redis_limiter.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    )
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
