"""Run every section against a started :class:`Bench` and write the results."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bench import chart, litellm, report, s_failover, s_memory, s_prompts, s_stream, s_throughput
from bench import profile as bench_profile
from bench.env import Bench, Sizes


def run(
    *,
    smoke: bool,
    force_python: bool,
    with_litellm: bool,
    out_dir: Path,
    name: str | None,
    profile: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Start everything, run all sections, stop everything; return (results, JSON path)."""
    sizes = Sizes.smoke() if smoke else Sizes.full()
    started = time.time()
    stem = name or time.strftime("%Y%m%d-%H%M%S", time.localtime(started)) + (
        "-smoke" if smoke else ""
    )
    with Bench(sizes, force_python=force_python, with_litellm=with_litellm) as b:
        print(f"starting upstreams and routers in {b.workdir} ...", flush=True)
        b.start()
        print(
            f"load generator: {b.tools['load']}; fixed upstream: {b.tools['upstream']};"
            f" streaming upstream: {b.tools['streaming_upstream']}",
            flush=True,
        )
        extra: dict[str, int] = {}
        lit: dict[str, Any] = {"skipped": "not requested (--with-litellm)"}
        if with_litellm:
            got = litellm.start(b.procs, b.workdir, b.fixed_port)
            if isinstance(got, str):
                print(f"LiteLLM skipped: {got}", flush=True)
                lit = {"skipped": got}
            else:
                extra["litellm"] = got
                lit = {"version": litellm.PIN, "port_started": True}
        res: dict[str, Any] = {
            "meta": {
                "name": name,
                "smoke": smoke,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "sizes": sizes.__dict__,
                "environment": b.environment(),
            }
        }
        print("[1/2] throughput and added latency, non-streaming", flush=True)
        res["throughput"] = s_throughput.run(b, extra)
        res["added_latency"] = res["throughput"]["added_latency"]
        res["workers"] = res["throughput"]["workers"]
        print("[3] streaming", flush=True)
        res["streaming"] = s_stream.run(b)
        print("[4] large prompts", flush=True)
        res["prompts"] = s_prompts.run(b)
        print("[5] failover", flush=True)
        res["failover"] = s_failover.run(b)
        print("[6] memory", flush=True)
        c16 = [r for r in res["throughput"]["rows"] if r["target"] == "router"]
        rate = max((r["rps"] for r in c16 if r["conns"] == b.sizes.memory_conns), default=0.0)
        res["memory"] = s_memory.run(b, rate)
        res["litellm"] = lit
        if profile:
            print("[profile] py-spy on the one-worker router, 16 connections", flush=True)
            res["profile"] = bench_profile.run(b, out_dir, stem)
        res["meta"]["environment"]["tools"]["load"] = b.driver.describe()
    res["targets"] = report.targets(res)
    res["meta"]["elapsed_s"] = round(time.time() - started, 1)
    res["meta"]["loadavg_at_end"] = list(os.getloadavg())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}.json"
    png = out_dir / f"{stem}.png"
    why = chart.write(res, png)
    res["meta"]["chart"] = None if why else png.name
    if why:
        print(f"chart skipped: {why}")
    path.write_text(json.dumps(res, indent=2) + "\n")
    return res, path
