"""``python -m bench.limits``: what a limited key costs on the hot path, A/B against an
unrestricted key of the same router, in the same run.

One router (one worker; ``[store] url = "none"`` unless ``--store``) holds two keys: one
of ``server.api_keys`` (unrestricted: no permission check, no limiter) and
``[keys.limited]`` with an allow-list, ``rpm``, ``tpm`` and ``budget_usd`` so large that
nothing is ever refused, so each of its requests runs the whole governance step
(permissions, estimate, acquire, settle, ``x-ratelimit-*`` headers). Against nginx (else
the Python upstream), wrk (else the Python driver) alternates runs with each key's
``Authorization`` header, so drift of the machine hits both alike. Prints each round
and the ratio of the medians (limited / unrestricted); the bar is 0.85 at 16
connections.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench import nginx
from bench.env import chat_body
from bench.loadgen import pick
from bench.procs import Procs, free_port, wait_http, wait_port
from bench.router import RouterSpec, config_toml
from bench.store import cpu_seconds

FREE = "sk-bench-unrestricted"
LIMITED = "sk-bench-limited"
LIMITED_KEY = f"""
[keys.limited]
key = "{LIMITED}"
models = ["default", "m"]
rpm = 1000000000
tpm = 1000000000000
budget_usd = 1000000000.0
"""


def main() -> None:
    """Serve both keys, alternate the runs, print the verdict."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--store", default="none", help='[store] url ("" = a SQLite file)')
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mr-limits-") as tmp:
        workdir = Path(tmp)
        procs = Procs(workdir)
        root = str(Path(__file__).resolve().parent.parent)
        try:
            binary = nginx.available()
            if binary is not None:
                upstream = nginx.start(procs, workdir, binary)
            else:
                upstream = free_port()
                argv = [sys.executable, "-m", "bench.upstream", "--port", str(upstream)]
                procs.start("upstream", argv, env={"PYTHONPATH": root})
                wait_port(upstream, 30)
            spec = RouterSpec(
                name="limits",
                providers={"up": f"http://127.0.0.1:{upstream}/v1"},
                models={"m": "up"},
                routes={"default": ["m"]},
                store=args.store,
            )
            text = config_toml(spec).replace("api_keys = []", f'api_keys = ["{FREE}"]')
            cfg = workdir / "limits.toml"
            cfg.write_text(text + LIMITED_KEY)
            port = free_port()
            argv = [sys.executable, "-m", "modelrouter.cli", "serve", "--config", str(cfg)]
            proc = procs.start(
                "router",
                [*argv, "--port", str(port)],
                env={"PYTHONPATH": root},  # this checkout's package
                stderr_to=str(workdir / "router.err"),
            )
            wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
            _check(port)
            driver = pick(False, workdir)
            body = workdir / "body.json"
            body.write_bytes(chat_body("default", "Hello! Say something short."))
            keys = {"unrestricted": FREE, "limited": LIMITED}
            for key in keys.values():  # warm pools and caches
                driver.run(port, body, args.conns, 2, None, headers=_auth(key))
            rps: dict[str, list[float]] = {name: [] for name in keys}
            cpu: dict[str, list[float]] = {name: [] for name in keys}
            for i in range(args.rounds):
                order = list(keys) if i % 2 == 0 else list(reversed(keys))
                for name in order:
                    before = cpu_seconds(proc.pid)
                    res = driver.run(
                        port, body, args.conns, args.seconds, None, headers=_auth(keys[name])
                    )
                    # CPU per request moves far less than requests/s on a shared machine.
                    cpu[name].append((cpu_seconds(proc.pid) - before) / res.requests * 1e6)
                    rps[name].append(res.rps)
                    print(
                        f"round {i + 1} {name}: {res.rps:,.0f} req/s  p50 {res.p50_ms:.3f} ms"
                        f"  p99 {res.p99_ms:.3f} ms  {cpu[name][-1]:.0f} µs CPU/request"
                        f"  errors {res.errors}",
                        flush=True,
                    )
            free, limited = (
                statistics.median(rps["unrestricted"]),
                statistics.median(rps["limited"]),
            )
            cpu_free, cpu_limited = (statistics.median(cpu[n]) for n in keys)
            print(
                f"median unrestricted {free:,.0f}  limited {limited:,.0f}  "
                f"ratio limited/unrestricted {limited / free:.3f}; CPU per request "
                f"{cpu_free:.0f} vs {cpu_limited:.0f} µs (ratio {cpu_free / cpu_limited:.3f})"
            )
        finally:
            procs.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _check(port: int) -> None:
    """Refuse to measure unless the limited key is limited and the other is not."""
    for key, limited in ((LIMITED, True), (FREE, False)):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers=_auth(key))
        with urllib.request.urlopen(request, timeout=10) as resp:
            has = resp.headers.get("x-ratelimit-limit-requests") is not None
        if has != limited:
            raise SystemExit(f"key {key!r}: x-ratelimit headers {has}, expected {limited}")


if __name__ == "__main__":
    main()
