"""``modelrouter status``: a running server's ``/health`` as a table."""

from __future__ import annotations

import sys
from typing import Any

import httpx2

from modelrouter.settings import ServerSettings

# Where a client reaches a server bound to a wildcard address: this machine's loopback.
_WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}


def server_url(
    server: ServerSettings, host: str | None = None, port: int | None = None
) -> str | None:
    """``http://HOST:PORT`` of the server ``serve`` would start from these settings.

    ``host`` and ``port`` override the settings as ``serve --host/--port`` do. ``None``
    when the port is 0 (the OS picks one, so only the server knows it).
    """
    host = (host or server.host).strip()
    port = server.port if port is None else port
    if port == 0:
        return None
    host = _WILDCARD_TO_LOOPBACK.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal in a URL
    return f"http://{host}:{port}"


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_status(report: dict[str, Any]) -> str:
    """Render a ``/health`` report as a fixed-width table."""
    rows = [["MODEL", "PROVIDER", "STATE", "BREAKER", "ERR%", "P50 MS", "RANKS", "NOTE"]]
    for name, m in report.get("models", {}).items():
        window = m.get("window") or {}
        rate = window.get("error_rate")
        ranks = ",".join(f"{r}#{i}" for r, i in (m.get("ranks") or {}).items())
        note = m.get("reason") or ""
        rows.append(
            [
                name,
                str(m.get("provider", "")),
                str(m.get("state", "")),
                str(m.get("breaker", "")),
                "-" if rate is None else f"{rate * 100:.0f}",
                _ms((m.get("latency_ms") or {}).get("p50")),
                ranks or "-",
                note,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    for route, info in report.get("routes", {}).items():
        ready = "ready" if info.get("ready") else "NOT READY"
        lines.append(
            f"route {route} ({info.get('strategy')}, {ready}): " + " > ".join(info.get("order", []))
        )
    cluster = report.get("cluster") or {}
    if cluster.get("redis", "off") != "off":
        probing = ", runs the probes" if cluster.get("prober") else ""
        lines.append(
            f"replica {report.get('instance')}: redis {cluster['redis']}, "
            f"{cluster.get('mode')} state{probing}"
        )
    return "\n".join(lines)


def print_status(url: str, api_key: str | None) -> int:
    """Fetch ``/health`` from ``url`` and print it; 0 if ready, 1 if not, 2 if unreachable.

    ``/health`` is open today; the key is sent anyway, so a server (or a proxy in front
    of it) that guards every path answers too.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx2.get(url.rstrip("/") + "/health", headers=headers, timeout=10)
    except httpx2.HTTPError as err:
        print(f"modelrouter: cannot reach {url}: {type(err).__name__}", file=sys.stderr)
        return 2
    if resp.status_code != 200:
        print(f"modelrouter: {url}/health answered {resp.status_code}", file=sys.stderr)
        return 2
    report = resp.json()
    print(format_status(report))
    return 0 if report.get("status") == "ok" else 1
