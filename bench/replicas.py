"""``python -m bench.replicas``: what sharing the limits through Redis costs a router,
and how throughput grows with replicas, measured end to end with wrk.

Every request comes from one limited key (``rpm``, ``tpm`` and ``budget_usd`` so large
that nothing is refused, so each request runs the whole governance step: acquire,
settle, ``x-ratelimit-*`` headers). The upstream is nginx (``bench/nginx.py``), Redis a
``redis-server`` of the benchmark's own (no persistence), the call log off
(``--store``, default ``none``). Routers, all one worker unless said otherwise:

=============  ======================================================================
``local``      one router without ``[cluster]``: limits counted in the process
``redis``      one router with ``[cluster] redis_url``: one ``EVALSHA`` per request
``lb-1``       that router behind an nginx load balancer
``lb-2``       the same balancer in front of it and a second replica (same Redis)
``workers-2``  one ``serve --workers 2`` with Redis: two processes, the kernel balances
=============  ======================================================================

Runs alternate between scenarios round by round, so the machine's drift hits them
alike. Reported per scenario: requests/s, latency p50/p99, the router processes' CPU per
request, Redis script calls and commands per request (``INFO commandstats``: the
commands inside the scripts count too), the balancer's and Redis's CPU per request. From those:

* **Redis on the request path**: p50 of ``redis`` minus p50 of ``local``, at one
  connection (the latency a client sees) and at ``--conns`` (queueing included);
* **replica scaling**: ``lb-2`` / ``lb-1`` throughput (the same balancer in both).

On a 2-core machine wrk, nginx, Redis and the routers share two cores, so ``lb-2``
cannot double ``lb-1``; ``workers-2`` (the same two processes without the balancer)
and the routers' CPU per request show whether the router or the machine is the limit.

Results go to ``bench/results/replicas.json`` (``replicas-quota.json`` with
``--cpu-quota``; ``--out`` for another folder). About 3 minutes with the
defaults.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import redis

from bench import nginx
from bench.env import chat_body
from bench.limits import LIMITED, LIMITED_KEY
from bench.loadgen import LoadResult, Wrk
from bench.procs import Procs, children, free_port, wait_http, wait_port
from bench.router import RouterSpec, config_toml
from bench.store import cpu_seconds

NO_DISK = ("--save", "", "--appendonly", "no")
LB = """\
    upstream one {{ server 127.0.0.1:{a}; keepalive 64; }}
    upstream two {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{lb1} backlog=1024;
        location / {{
            proxy_pass http://one; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
    server {{
        listen 127.0.0.1:{lb2} backlog=1024;
        location / {{
            proxy_pass http://two; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
"""
"""The balancer's part of its ``http`` block: ``lb1`` in front of replica ``a``,
``lb2`` in front of ``a`` and ``b``."""


class Setup:
    """Every process of the run, started once: upstream, Redis, routers, balancer."""

    def __init__(self, procs: Procs, workdir: Path, store: str, quota: Quotas | None) -> None:
        self.procs, self.workdir, self.store, self.quota = procs, workdir, store, quota
        binary = nginx.available()
        server = shutil.which("redis-server")
        if binary is None or server is None or shutil.which("wrk") is None:
            sys.exit("needs nginx, wrk and redis-server (apt-get install nginx wrk redis-server)")
        self.nginx = binary
        self.upstream = nginx.start(procs, workdir, binary)
        self.redis_port = free_port()
        self.redis = procs.start(
            "redis",
            [server, "--port", str(self.redis_port), "--bind", "127.0.0.1", *NO_DISK],
        )
        wait_port(self.redis_port, 10, self.redis)
        self.client = redis.Redis(port=self.redis_port)
        url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.routers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        for name, cluster, workers in (
            ("local", None, 1),
            ("a", url, 1),
            ("b", url, 1),
            ("w2", url, 2),
        ):
            self.routers[name] = self._router(name, cluster, workers)
        a, b = self.routers["a"][0], self.routers["b"][0]
        self.lb1, self.lb2 = free_port(), free_port()
        http = LB.format(a=a, b=b, lb1=self.lb1, lb2=self.lb2)
        self.lb = nginx.launch(procs, binary, workdir / "lb", "lb", http)
        wait_port(self.lb2, 10, self.lb)
        for name, (port, proc) in self.routers.items():
            wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
            if self.quota is not None:
                self.quota.check(name, self.pids(name))
            _check(port, shared=name != "local")

    def _router(
        self, name: str, cluster: str | None, workers: int
    ) -> tuple[int, subprocess.Popen[bytes]]:
        spec = RouterSpec(
            name=name,
            providers={"up": f"http://127.0.0.1:{self.upstream}/v1"},
            models={"m": "up"},
            routes={"default": ["m"]},
            store=self.store,
        )
        # Behind the balancer the Host is the balancer's: list its name (see README).
        text = config_toml(spec).replace(
            "api_keys = []", 'api_keys = []\nallowed_hosts = ["127.0.0.1"]'
        )
        text += LIMITED_KEY
        if cluster is not None:
            text += f'\n[cluster]\nredis_url = "{cluster}"\nnamespace = "bench"\n'
        cfg = self.workdir / f"{name}.toml"
        cfg.write_text(text)
        port = free_port()
        argv = [sys.executable, "-m", "modelrouter.cli", "serve", "--config", str(cfg)]
        argv += ["--port", str(port), "--workers", str(workers)]
        root = str(Path(__file__).resolve().parent.parent)
        err = str(self.workdir / f"{name}.err")
        proc = self.procs.start(name, argv, env={"PYTHONPATH": root}, stderr_to=err)
        if self.quota is not None:  # before uvicorn forks its workers: they inherit it
            self.quota.limit(name, workers, proc.pid)
        return port, proc

    def pids(self, *names: str) -> list[int]:
        """The router processes of ``names``, workers included."""
        out: list[int] = []
        for n in names:
            pid = self.routers[n][1].pid
            out += [pid, *children(pid)]
        return out

    def commands(self) -> tuple[int, int]:
        """Script calls (``EVALSHA``) and all commands (those inside scripts included)
        Redis has run so far."""
        stats = self.client.info("commandstats")
        scripts = int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
        return scripts, sum(int(v["calls"]) for v in stats.values())


PERIOD_US = 5000
"""The quota's accounting period (``cpu.cfs_period_us``)."""


class Quotas:
    """A cgroup (v1 ``cpu`` controller) per router with ``share`` of a core per process:
    on a machine with fewer cores than processes, each replica still runs as on a
    core (share) of its own, so what limits two replicas is the design, not the
    cores the load generator and Redis also need."""

    ROOT = Path("/sys/fs/cgroup/cpu")

    def __init__(self, share: float) -> None:
        self.share = share
        self.groups: list[Path] = []
        if not (self.ROOT / "cpu.cfs_quota_us").exists() or not os.access(self.ROOT, os.W_OK):
            sys.exit(f"--cpu-quota needs a writable cgroup v1 cpu controller at {self.ROOT}")

    def limit(self, name: str, processes: int, pid: int) -> None:
        """Put ``pid`` (and the workers it will start) under ``processes`` times the share."""
        group = self.ROOT / f"modelrouter-bench-{os.getpid()}-{name}"
        group.mkdir()
        self.groups.append(group)
        # A short period: with the default 100 ms a throttled router stalls for tens of
        # ms, past the limiter's 50 ms bound, and its requests go to the fallback.
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * self.share * processes)))
        (group / "cgroup.procs").write_text(str(pid))

    def check(self, name: str, pids: list[int]) -> None:
        """Refuse to measure a router whose processes escaped their group."""
        group = next(g for g in self.groups if g.name.endswith(f"-{name}"))
        inside = {int(p) for p in (group / "cgroup.procs").read_text().split()}
        if not set(pids) <= inside:
            raise SystemExit(f"router {name}: processes {pids} not all in {group}")

    def close(self) -> None:
        """Remove the groups (their processes have stopped)."""
        for group in self.groups:
            try:
                group.rmdir()
            except OSError as err:
                print(f"could not remove {group}: {err}", file=sys.stderr)


def _check(port: int, *, shared: bool) -> None:
    """Refuse to measure unless the key is limited, and shared where it should be."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers=_auth())
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.headers.get("x-ratelimit-limit-requests") is None:
            raise SystemExit(f"router on {port}: the bench key is not limited")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
        mode = orjson.loads(resp.read())["cluster"].get("mode")
    if (mode == "shared") != shared:
        raise SystemExit(f"router on {port}: cluster mode {mode!r}")


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {LIMITED}"}


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def main(argv: list[str] | None = None) -> None:
    """Start everything, alternate the runs, print and write the results."""
    ap = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--store", default="none", help='[store] url of every router ("none": off)')
    ap.add_argument(
        "--cpu-quota",
        type=float,
        default=None,
        help="give each router process this share of a core (cgroup v1 cpu.cfs_quota_us, "
        "needs root): replicas then scale as on cores of their own",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mr-replicas-") as tmp:
        workdir = Path(tmp)
        procs = Procs(workdir)
        quota = Quotas(args.cpu_quota) if args.cpu_quota else None
        try:
            results = _measure(Setup(procs, workdir, args.store, quota), workdir, args)
        finally:
            procs.close()
            if quota is not None:
                quota.close()
    args.out.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    name = "replicas-quota.json" if args.cpu_quota else "replicas.json"
    (args.out / name).write_bytes(data)
    print(data.decode())


def _measure(s: Setup, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    # scenario -> (port, router processes whose CPU it spends, connections)
    c = args.conns
    runs = {
        f"local c{c}": (s.routers["local"][0], ["local"], c),
        f"redis c{c}": (s.routers["a"][0], ["a"], c),
        "local c1": (s.routers["local"][0], ["local"], 1),
        "redis c1": (s.routers["a"][0], ["a"], 1),
        f"lb-1 c{c}": (s.lb1, ["a"], c),
        f"lb-2 c{c}": (s.lb2, ["a", "b"], c),
        f"workers-2 c{c}": (s.routers["w2"][0], ["w2"], c),
    }
    wrk = Wrk(shutil.which("wrk") or "wrk", workdir)
    body = workdir / "body.json"
    body.write_bytes(chat_body("default", "Hello! Say something short."))
    for port, _, conns in runs.values():  # warm pools, caches, both replicas
        wrk.run(port, body, conns, 2, headers=_auth())
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for i in range(args.rounds):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for name in order:
            port, names, conns = runs[name]
            pids = s.pids(*names)
            cpu0, lb0, redis0 = (
                _cpu(pids),
                _cpu([s.lb.pid, *children(s.lb.pid)]),
                _cpu([s.redis.pid]),
            )
            scripts0, cmd0 = s.commands()
            res: LoadResult = wrk.run(port, body, conns, args.seconds, headers=_auth())
            n = max(res.requests, 1)
            row = {
                **res.as_dict(),
                "router_cpu_us": round((_cpu(pids) - cpu0) / n * 1e6, 1),
                "lb_cpu_us": round((_cpu([s.lb.pid, *children(s.lb.pid)]) - lb0) / n * 1e6, 1),
                "redis_cpu_us": round((_cpu([s.redis.pid]) - redis0) / n * 1e6, 1),
            }
            scripts1, cmd1 = s.commands()
            row["redis_scripts"] = round((scripts1 - scripts0) / n, 3)
            row["redis_commands"] = round((cmd1 - cmd0) / n, 3)
            rows[name].append(row)
            print(
                f"round {i + 1} {name:>14}: {res.rps:>8,.0f} req/s  p50 {res.p50_ms:.3f} ms"
                f"  p99 {res.p99_ms:.3f} ms  router {row['router_cpu_us']:.0f} µs/req"
                f"  redis {row['redis_scripts']:.2f} scripts/req  errors {res.errors}",
                flush=True,
            )
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "conns"}
        for name, rs in rows.items()
    }
    summary = {
        "redis_p50_added_ms_c1": round(med["redis c1"]["p50_ms"] - med["local c1"]["p50_ms"], 4),
        f"redis_p50_added_ms_c{c}": round(
            med[f"redis c{c}"]["p50_ms"] - med[f"local c{c}"]["p50_ms"], 4
        ),
        "redis_vs_local_throughput": round(
            med[f"redis c{c}"]["rps"] / med[f"local c{c}"]["rps"], 3
        ),
        "two_replicas_vs_one": round(med[f"lb-2 c{c}"]["rps"] / med[f"lb-1 c{c}"]["rps"], 3),
        "errors": sum(r["errors"] for rs in rows.values() for r in rs),
        # At least one acquire per request: no run went to the per-process fallback.
        "redis_every_request": all(
            r["redis_scripts"] >= 1 for name, rs in rows.items() if "local" not in name for r in rs
        ),
        "workers2_vs_one": round(med[f"workers-2 c{c}"]["rps"] / med[f"redis c{c}"]["rps"], 3),
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "store": args.store,
        "cpu_quota_per_router_process": args.cpu_quota,
        "summary": summary,
        "median": {k: {f: round(v, 4) for f, v in m.items()} for k, m in med.items()},
        "runs": rows,
    }


if __name__ == "__main__":
    main()
