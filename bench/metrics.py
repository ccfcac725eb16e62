"""``python -m bench.metrics``: what counting one request costs, and what a scrape costs.

Per request: :meth:`modelrouter.observe.metrics.Metrics.record` on a served request's
record (requests, duration and time-to-first-token histograms, an attempt, three token
counts, cost), in memory and over a shared directory, against the same updates made
through prometheus_client's own metric objects, in its single-process mode and in its
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a file write per update), with
``labels()`` on every update and with the labelled children looked up once. Per scrape:
rendering ``/metrics`` over 1 and 4 workers' tallies holding ~200 series each.
Best of 3 runs each, microseconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

N = 100_000


def _best(fn: Callable[[], None], n: int = N) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def _ours() -> None:
    from modelrouter.errors import Attempt
    from modelrouter.health import HealthTracker
    from modelrouter.observe.exposition import Exposition
    from modelrouter.observe.metrics import Metrics
    from modelrouter.settings import HealthSettings, Settings
    from modelrouter.store.record import CallRecord

    models = {f"m{i}": {"provider": f"p{i % 4}"} for i in range(8)}
    settings = Settings.model_validate(
        {
            "providers": {f"p{i}": {"kind": "simulated"} for i in range(4)},
            "models": models,
            "routes": {"default": {"models": list(models)}},
        }
    )

    def record(model: str) -> CallRecord:
        provider = models[model]["provider"]
        return CallRecord(
            id="r", request_id="r", ts=0.0, surface="http", endpoint="/v1/chat/completions",
            route="default", requested_model="default", model=model, provider=provider,
            status=200, error_code=None, stream=True, latency_ms=12.5, ttft_ms=3.1,
            input_tokens=12, output_tokens=30, cached_tokens=4, cost_usd=0.0001,
            price_unknown=False, usage_estimated=False, fallbacks=0,
            attempts=[Attempt(model, provider, 200, None, 10.0, "ok")], user=None, tags=(),
            team="research",
        )  # fmt: skip

    served = record("m0")
    for where, directory in (("memory", None), ("shared directory", tempfile.mkdtemp())):
        m = Metrics(settings, directory)
        print(f"Metrics.record, {where}: {_best(lambda m=m: m.record(served)):.2f} us/request")
    tracker = HealthTracker(HealthSettings(), list(models))
    for workers in (1, 4):
        directory = tempfile.mkdtemp()
        tallies = [Metrics(settings, directory) for _ in range(workers)]
        for m in tallies:
            for model in models:
                for status in (200, 429, 502):
                    rec = record(model)
                    rec.status = status
                    m.record(rec)
        expo = Exposition(tallies[0], tracker)
        size = len(expo.render(None)[0])
        cost = _best(lambda expo=expo: expo.render(None), 200)
        print(f"scrape over {workers} worker(s), {size:,} bytes: {cost / 1000:.2f} ms")


def _prometheus_client() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from modelrouter.observe.families import LATENCY_BUCKETS, TTFT_BUCKETS

    reg = CollectorRegistry()
    req = Counter("r", "", ["surface", "route", "model", "provider", "code"], registry=reg)
    dur = Histogram("d", "", ["route", "model"], buckets=LATENCY_BUCKETS, registry=reg)
    ttft = Histogram("t", "", ["model"], buckets=TTFT_BUCKETS, registry=reg)
    att = Counter("a", "", ["model", "provider", "outcome"], registry=reg)
    tok = Counter("k", "", ["model", "direction"], registry=reg)
    cost = Counter("c", "", ["model", "team"], registry=reg)

    def each() -> None:
        req.labels("http", "default", "m0", "p0", "200").inc()
        dur.labels("default", "m0").observe(0.0125)
        ttft.labels("m0").observe(0.0031)
        att.labels("m0", "p0", "ok").inc()
        tok.labels("m0", "input").inc(12)
        tok.labels("m0", "output").inc(30)
        tok.labels("m0", "cached").inc(4)
        cost.labels("m0", "research").inc(0.0001)

    c = (
        req.labels("http", "default", "m0", "p0", "200"),
        dur.labels("default", "m0"),
        ttft.labels("m0"),
        att.labels("m0", "p0", "ok"),
        tok.labels("m0", "input"),
        tok.labels("m0", "output"),
        tok.labels("m0", "cached"),
        cost.labels("m0", "research"),
    )

    def cached() -> None:
        c[0].inc()
        c[1].observe(0.0125)  # type: ignore[attr-defined]
        c[2].observe(0.0031)  # type: ignore[attr-defined]
        c[3].inc()
        c[4].inc(12)
        c[5].inc(30)
        c[6].inc(4)
        c[7].inc(0.0001)

    mode = "multiprocess" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "single-process"
    print(f"prometheus_client {mode}, labels() each time: {_best(each):.2f} us/request")
    print(f"prometheus_client {mode}, children cached: {_best(cached):.2f} us/request")


def main() -> None:
    """Print every measurement."""
    if sys.argv[1:] == ["--prometheus-client"]:
        _prometheus_client()
        return
    _ours()
    # prometheus_client picks its mode at import: each mode in a fresh interpreter.
    for env in ({}, {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp()}):
        cmd = [sys.executable, "-m", "bench.metrics", "--prometheus-client"]
        subprocess.run(cmd, env={**os.environ, **env}, check=True)


if __name__ == "__main__":
    main()
