"""Section 3: streaming. Time to first token and inter-chunk delay, direct and via the
router, with a check that every upstream event came through 1:1, byte for byte.

TTFT is reported for warm streams (back to back within a block) and, separately, for
the first stream of each block, which follows an idle pause: on this kind of VM a
process woken from idle is measurably slower, and the router path wakes two more
processes than the direct one.
"""

from __future__ import annotations

from typing import Any

from bench.common import ms, percentile
from bench.env import Bench, chat_body
from bench.sse_client import StreamRun, measure, one_event_per_chunk


def _stats(run: StreamRun) -> dict[str, Any]:
    ttft = sorted(x.ttft_s for x in run.samples if not x.after_idle)
    idle = sorted(x.ttft_s for x in run.samples if x.after_idle)
    gaps = sorted(g for x in run.samples for g in x.gaps_s)
    return {
        "streams": len(run.samples),
        "errors": run.errors,
        "events_per_stream": sorted({len(x.chunks) for x in run.samples}),
        "ttft_p50_ms": ms(percentile(ttft, 50)),
        "ttft_p99_ms": ms(percentile(ttft, 99)),
        "ttft_after_idle_p50_ms": ms(percentile(idle, 50)),
        "gap_p50_ms": ms(percentile(gaps, 50)),
        "gap_p99_ms": ms(percentile(gaps, 99)),
        "one_event_per_chunk": all(one_event_per_chunk(x.chunks) for x in run.samples),
    }


def run(b: Bench) -> dict[str, Any]:
    """Alternate direct and routed streams; compare timings and bytes."""
    s = b.sizes
    body = chat_body("bench-stream", "Stream a short answer, please.", stream=True)
    runs = measure({"direct": b.stream_port, "router": b.routers["main"].port}, body, s.streams)
    direct, routed = runs["direct"], runs["router"]
    reference = direct.samples[0].chunks if direct.samples else []
    identical = bool(routed.samples) and all(x.chunks == reference for x in routed.samples)
    d, r = _stats(direct), _stats(routed)
    out = {
        "streams": s.streams,
        "events_per_stream": s.chunks + 1,
        "interval_ms": s.interval_ms,
        "direct": d,
        "router": r,
        "ttft_added_p50_ms": round(r["ttft_p50_ms"] - d["ttft_p50_ms"], 4),
        "ttft_added_p99_ms": round(r["ttft_p99_ms"] - d["ttft_p99_ms"], 4),
        "ttft_added_after_idle_p50_ms": round(
            r["ttft_after_idle_p50_ms"] - d["ttft_after_idle_p50_ms"], 4
        ),
        "gap_added_p99_ms": round(r["gap_p99_ms"] - d["gap_p99_ms"], 4),
        "passthrough_identical": identical,
        "passthrough_one_event_per_chunk": r["one_event_per_chunk"],
    }
    print(
        f"  TTFT p50 direct {d['ttft_p50_ms']:.3f} ms, router {r['ttft_p50_ms']:.3f} ms"
        f" (after idle: {out['ttft_added_after_idle_p50_ms']:+.3f} ms);"
        f" gap p99 direct {d['gap_p99_ms']:.3f} ms, router {r['gap_p99_ms']:.3f} ms;"
        f" identical {identical}",
        flush=True,
    )
    return out
