"""Section 5: failover cost. A route ``[primary, good]`` against the route ``[good]`` on
the same router, one connection, for a primary that refuses connections, one that
answers 500, and one whose breaker is open.

For the first two the router uses health settings that never demote the primary
(:data:`bench.router.LENIENT_HEALTH`), so every request pays for the failed attempt;
with default settings the breaker would open after three failures and the steady
state would be the third case.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from bench.env import Bench, chat_body
from bench.procs import http_get

CASES = [
    ("refused", "fail-r0", "refused-first", 0),
    ("refused", "fail-r1", "refused-first", 1),
    ("500", "fail-r0", "err-first", 0),
    ("500", "fail-r1", "err-first", 1),
    ("breaker open", "breaker", "refused-first", 1),
]
"""(primary, router instance, route, retries_per_model)."""


def post_chat(port: int, body: bytes) -> tuple[int, dict[str, str]]:
    """One request; (status, response headers)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}


def open_breaker(port: int, body: bytes) -> str:
    """Send requests until the primary's breaker is open; return its breaker state."""
    for _ in range(5):
        post_chat(port, body)
    _, raw = http_get(f"http://127.0.0.1:{port}/health")
    state: str = json.loads(raw)["models"]["refused"]["breaker"]
    return state


def run(b: Bench) -> dict[str, Any]:
    """Each case right after its own baseline on the same router instance."""
    s = b.sizes
    good = b.body_file("route-good", chat_body("only-good", "Hello!"))
    rows: list[dict[str, Any]] = []
    for primary, inst, route, retries in CASES:
        port = b.routers[inst].port
        body_bytes = chat_body(route, "Hello!")
        body = b.body_file(f"route-{route}", body_bytes)
        breaker = open_breaker(port, body_bytes) if primary == "breaker open" else None
        status, headers = post_chat(port, body_bytes)
        base = b.driver.run(port, good, 1, s.failover_duration_s, s.max_requests)
        case = b.driver.run(port, body, 1, s.failover_duration_s, s.max_requests)
        row = {
            "primary": primary,
            "retries_per_model": retries,
            "served_by": headers.get("x-modelrouter-model"),
            "attempts": int(headers.get("x-modelrouter-attempts", "0")),
            "status": status,
            "primary_breaker": breaker,
            "baseline": base.as_dict(),
            "failover": case.as_dict(),
            "added_p50_ms": round(case.p50_ms - base.p50_ms, 4),
            "added_p99_ms": round(case.p99_ms - base.p99_ms, 4),
        }
        rows.append(row)
        print(
            f"  primary {primary:<12} retries={retries}: served by {row['served_by']} after"
            f" {row['attempts']} attempt(s), added p50 {row['added_p50_ms']:.3f} ms,"
            f" errors {case.errors}",
            flush=True,
        )
    return {"conns": 1, "rows": rows}
