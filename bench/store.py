"""``python -m bench.store``: what the call log costs and how fast its store answers.

Parts (default: all):

* ``throughput`` — the same router with ``[store] url = "none"``, a SQLite file and
  PostgreSQL on loopback, against nginx, loaded with wrk at 16 connections in
  alternating rounds; plus p50 at one connection. Targets: each store >= 0.85x the
  throughput of "none", p50 added <= 0.05 ms.
* ``writer`` — the writer alone at paced rates (target: >= 5,000 records/s into each
  engine with the queue flat).
* ``queries`` — 1,000,000 records over 30 days loaded through the writer's batches,
  then the admin API of a real server timed (targets: ``/admin/usage?since=30d&
  group_by=model`` <= 100 ms, ``/admin/logs?limit=100`` with any one filter <= 50 ms).
* ``drivers`` — asyncpg against psycopg 3 COPY (why the store uses asyncpg).

PostgreSQL: ``--pg postgresql://root@127.0.0.1:5432/test`` (the benchmark works in a
database of its own, ``modelrouter_bench``, which it creates and empties).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import orjson

from bench import nginx
from bench.env import chat_body
from bench.loadgen import paced_p50, pick
from bench.procs import Procs
from bench.router import RouterSpec, start, wait_ready
from bench.store_data import KEYS, MODELS, ROUTES, TEAMS, fresh_store, pg_url, run
from bench.store_writer import bulk_load, drivers, paced

ADMIN = "bench-admin"
ENGINES = ("sqlite", "postgresql")


def _spec(name: str, upstream: int, store: str) -> RouterSpec:
    return RouterSpec(
        name=name,
        providers={"up": f"http://127.0.0.1:{upstream}/v1"},
        models={"m": "up"},
        routes={"default": ["m"]},
        store=store,
        admin_keys=[ADMIN],
    )


def _store_urls(workdir: Path, pg_base: str, tag: str) -> dict[str, str]:
    return {
        "sqlite": f"sqlite:///{workdir / f'{tag}.db'}",
        "postgresql": run(pg_url(pg_base)),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(workdir: Path, pg_base: str, rounds: int, seconds: float) -> dict[str, Any]:
    """Requests/s at 16 connections and p50 at one, per store, in alternating rounds.

    Also the router process's CPU time per request (every thread, SQLite's included):
    on a shared 2-core machine other load moves requests/s by a third between rounds,
    while CPU per request barely moves, so its ratio is the steadier estimate of what
    the call log costs a CPU-bound router.
    """
    procs = Procs(workdir)
    try:
        binary = nginx.available()
        if binary is None:
            raise SystemExit("bench.store throughput needs nginx (apt-get install nginx)")
        upstream = nginx.start(procs, workdir, binary)
        urls = {"none": "none", **_store_urls(workdir, pg_base, "throughput")}
        run(fresh_store(urls["postgresql"]))
        routers = {
            name: start(procs, workdir, _spec(name, upstream, url)) for name, url in urls.items()
        }
        wait_ready(procs, list(routers.values()))
        driver = pick(False, workdir)
        body = workdir / "body.json"
        body.write_bytes(chat_body("default", "Hello! Say something short."))
        for r in routers.values():
            driver.run(r.port, body, 16, 2, None)  # warm pools, caches and the store
        rps: dict[str, list[float]] = {n: [] for n in routers}
        cpu: dict[str, list[float]] = {n: [] for n in routers}
        p50: dict[str, list[float]] = {n: [] for n in routers}
        names = list(routers)
        for i in range(rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                pid = routers[name].proc.pid
                before = cpu_seconds(pid)
                res = driver.run(routers[name].port, body, 16, seconds, None)
                used = (cpu_seconds(pid) - before) / res.requests * 1e6
                rps[name].append(res.rps)
                cpu[name].append(used)
                print(
                    f"round {i + 1} {name:10s} {res.rps:8,.0f} req/s  p50 {res.p50_ms:.3f} ms"
                    f"  {used:6.1f} us CPU/request",
                    flush=True,
                )
            for name in order:
                p50[name].append(paced_p50(routers[name].port, body, 1500, 0.0005))
        health = {}
        for name, r in routers.items():
            h = httpx2.get(f"http://127.0.0.1:{r.port}/health", timeout=10).json()
            health[name] = {
                k: h["store"].get(k) for k in ("state", "written", "dropped", "spooled")
            }
        out: dict[str, Any] = {"conns": 16, "seconds": seconds, "rounds": rounds, "health": health}
        base_rps, base_p50 = statistics.median(rps["none"]), statistics.median(p50["none"])
        base_cpu = statistics.median(cpu["none"])
        for name in names:
            med, lat = statistics.median(rps[name]), statistics.median(p50[name])
            used = statistics.median(cpu[name])
            out[name] = {
                "rps_median": round(med),
                "rps_rounds": [round(x) for x in rps[name]],
                "ratio_to_none": round(med / base_rps, 3),
                "cpu_us_per_request": round(used, 1),
                "cpu_ratio_to_none": round(base_cpu / used, 3),
                "p50_1conn_ms": round(lat, 4),
                "p50_added_ms": round(lat - base_p50, 4),
            }
        return out
    finally:
        procs.close()


def writer(pg_base: str, workdir: Path, rates: list[int], seconds: float) -> list[dict[str, Any]]:
    """The writer alone at each paced rate, into each engine."""
    out = []
    for engine, url in _store_urls(workdir, pg_base, "writer").items():
        for rate in rates:
            store = run(fresh_store(url if engine == "postgresql" else _fresh_file(url)))
            res = run(paced(store, rate, seconds))
            print(res, flush=True)
            out.append(res)
    return out


def _fresh_file(url: str) -> str:
    path = Path(url.removeprefix("sqlite:///"))
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    return url


QUERIES: list[tuple[str, dict[str, str]]] = [
    ("/admin/usage", {"since": "30d", "group_by": "model"}),
    ("/admin/usage", {"since": "30d", "group_by": "key"}),
    ("/admin/usage", {"since": "30d", "group_by": "team", "interval": "1d"}),
    ("/admin/usage", {"since": "1h", "group_by": "route", "interval": "1m"}),
    ("/admin/logs", {"limit": "100"}),
    ("/admin/logs", {"limit": "100", "model": MODELS[3]}),
    ("/admin/logs", {"limit": "100", "route": ROUTES[1]}),
    ("/admin/logs", {"limit": "100", "key": KEYS[7]}),
    ("/admin/logs", {"limit": "100", "team": TEAMS[2]}),
    ("/admin/logs", {"limit": "100", "status": "502"}),
    ("/admin/logs", {"limit": "100", "status": "error"}),
    ("/admin/logs", {"limit": "100", "since": "1h"}),
    ("/admin/logs", {"limit": "100", "since": "20d", "until": "19d"}),
]


def _time(client: httpx2.Client, path: str, params: dict[str, str], n: int) -> dict[str, Any]:
    times = []
    for i in range(n + 3):
        t0 = time.perf_counter()
        resp = client.get(path, params=params)
        took = (time.perf_counter() - t0) * 1000
        assert resp.status_code == 200, resp.text
        if i >= 3:  # the first few warm the caches
            times.append(took)
    times.sort()
    data = resp.json()
    rows = len(data["data"]) if "data" in data else data["totals"]["requests"]
    return {
        "query": path + "?" + "&".join(f"{k}={v}" for k, v in params.items()),
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "rows_or_requests": rows,
    }


def queries(workdir: Path, pg_base: str, n: int, engines: list[str]) -> dict[str, Any]:
    """Load ``n`` records per engine, then time the admin queries on a real server."""
    out: dict[str, Any] = {}
    urls = _store_urls(workdir, pg_base, "queries")
    for engine in engines:
        store = run(fresh_store(urls[engine]))
        t0 = time.perf_counter()
        loaded = run(bulk_load(store, n, days=30))
        loaded["wall_s"] = round(time.perf_counter() - t0, 1)
        print(f"{engine}: loaded {loaded}", flush=True)
        procs = Procs(workdir)
        try:
            r = start(procs, workdir, _spec(f"q-{engine}", 9, urls[engine]))
            wait_ready(procs, [r])
            headers = {"authorization": f"Bearer {ADMIN}"}
            base = f"http://127.0.0.1:{r.port}"
            with httpx2.Client(base_url=base, headers=headers, timeout=60) as client:
                timed = [_time(client, path, params, 15) for path, params in QUERIES]
                page = client.get("/admin/logs", params={"limit": "100"}).json()
                for _ in range(50):  # fifty pages deep
                    page = client.get(
                        "/admin/logs", params={"limit": "100", "cursor": page["next_cursor"]}
                    ).json()
                deep = {"limit": "100", "cursor": page["next_cursor"]}
                timed.append(_time(client, "/admin/logs", deep, 15))
        finally:
            procs.close()
        for t in timed:
            print(f"{engine:10s} {t['median_ms']:8.2f} ms  p95 {t['p95_ms']:8.2f}  {t['query']}")
        out[engine] = {"load": loaded, "queries": timed}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts, print, and write the JSON results."""
    p = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n")[0])
    p.add_argument("parts", nargs="*", default=["throughput", "writer", "queries", "drivers"])
    p.add_argument("--pg", default="postgresql://root@127.0.0.1:5432/test")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--rates", default="5000,10000,20000")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "store.json")
    a = p.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mr-store-") as tmp:
        workdir = Path(tmp)
        if "drivers" in a.parts:
            store = run(fresh_store(run(pg_url(a.pg))))
            results["drivers"] = run(drivers(store))
            for row in results["drivers"]:
                print(row)
        if "writer" in a.parts:
            rates = [int(x) for x in a.rates.split(",")]
            results["writer"] = writer(a.pg, workdir, rates, 6)
        if "throughput" in a.parts:
            results["throughput"] = throughput(workdir, a.pg, a.rounds, a.seconds)
            print(orjson.dumps(results["throughput"], option=orjson.OPT_INDENT_2).decode())
        if "queries" in a.parts:
            results["queries"] = queries(workdir, a.pg, a.records, a.engines.split(","))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"results: {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
