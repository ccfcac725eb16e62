"""Load generators: wrk from Debian when present, else an async Python driver.

Both send the same POST (body from a file) over ``conns`` keep-alive connections for
at most ``duration_s`` seconds and, when ``max_requests`` is given, stop after about
that many answers. Both report throughput, latency percentiles and errors in one
:class:`LoadResult`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import percentile, run_async

CHAT_PATH = "/v1/chat/completions"


@dataclass
class LoadResult:
    """One load run. Latencies in milliseconds."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    """Connection errors, timeouts and non-2xx answers."""
    conns: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests":%d,"duration_us":%d,"errors":%d,' ..
    '"p50":%.1f,"p90":%.1f,"p99":%.1f,"mean":%.3f,"max":%.1f}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


class Wrk:
    """wrk with one thread (the router under test gets the other core)."""

    name = "wrk"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._n = 0
        self._delegated = 0

    def describe(self) -> str:
        """What actually generated the load so far."""
        v = self.version()
        if not self._delegated:
            return v
        if not self._n:
            return f"{PyDriver().version()} (count-bounded runs; {v} installed)"
        return f"{v} (timed runs) and {PyDriver().version()} (count-bounded runs)"

    def version(self) -> str:
        """``wrk 4.1.0`` as Debian builds it."""
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True, timeout=10)
        m = re.search(r"wrk (\S+)", out.stdout + out.stderr)
        return f"wrk {m.group(1)}" if m else "wrk"

    def run(
        self,
        port: int,
        body: Path,
        conns: int,
        duration_s: float,
        max_requests: int | None = None,
        path: str = CHAT_PATH,
        headers: Mapping[str, str] | None = None,
    ) -> LoadResult:
        """One timed wrk run against ``127.0.0.1:port`` (``headers``: added to each request).

        wrk's runs last whole seconds and cannot stop after N answers (a Lua
        ``response()`` hook that stops the thread skews its latency figures), so a
        run bounded by ``max_requests`` goes to the Python driver instead.
        """
        if max_requests is not None:
            self._delegated += 1
            return PyDriver().run(port, body, conns, duration_s, max_requests, path, headers)
        self._n += 1
        script = self.workdir / f"wrk-{self._n}.lua"
        extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
        script.write_text(extra + WRK_SCRIPT.format(body=body))
        argv = [
            self.binary,
            "-t1",
            f"-c{conns}",
            f"-d{max(1, math.ceil(duration_s))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
        d = json.loads(line.removeprefix("BENCHJSON "))
        dur = d["duration_us"] / 1e6
        return LoadResult(
            requests=d["requests"],
            duration_s=dur,
            rps=d["requests"] / dur if dur else 0.0,
            p50_ms=d["p50"] / 1000,
            p90_ms=d["p90"] / 1000,
            p99_ms=d["p99"] / 1000,
            mean_ms=d["mean"] / 1000,
            max_ms=d["max"] / 1000,
            errors=d["errors"],
            conns=conns,
        )


class PyDriver:
    """An asyncio keep-alive HTTP/1.1 driver, used when wrk is absent."""

    name = "python"

    def version(self) -> str:
        """Names the fallback and its event loop."""
        try:
            import uvloop

            return f"python asyncio driver (uvloop {uvloop.__version__})"  # type: ignore[attr-defined]
        except ImportError:
            return "python asyncio driver"

    def describe(self) -> str:
        """What generated the load."""
        return self.version()

    def run(
        self,
        port: int,
        body: Path,
        conns: int,
        duration_s: float,
        max_requests: int | None = None,
        path: str = CHAT_PATH,
        headers: Mapping[str, str] | None = None,
    ) -> LoadResult:
        """One bounded run against ``127.0.0.1:port`` (``headers``: added to each request)."""
        data = body.read_bytes()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        return run_async(_drive(port, request, conns, duration_s, max_requests))


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    low = head.lower()
    i = low.find(b"\r\ncontent-length:")
    if i >= 0:
        await reader.readexactly(int(low[i + 17 : low.find(b"\r\n", i + 2)]))
        return status
    while True:  # chunked
        size = int((await reader.readline()).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return status


async def _drive(
    port: int, request: bytes, conns: int, duration_s: float, max_requests: int | None
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    budget = max_requests if max_requests is not None else 1 << 62
    start = time.perf_counter()
    deadline = start + duration_s

    async def worker() -> None:
        nonlocal budget, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        try:
            while budget > 0 and time.perf_counter() < deadline:
                budget -= 1
                t0 = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if not 200 <= status < 400:
                    errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conns))), duration_s + 30)
    elapsed = time.perf_counter() - start
    lat = sorted(latencies)
    mean = sum(lat) / len(lat) if lat else math.nan
    return LoadResult(
        requests=len(lat),
        duration_s=elapsed,
        rps=len(lat) / elapsed if elapsed else 0.0,
        p50_ms=percentile(lat, 50) * 1000,
        p90_ms=percentile(lat, 90) * 1000,
        p99_ms=percentile(lat, 99) * 1000,
        mean_ms=mean * 1000,
        max_ms=(lat[-1] if lat else math.nan) * 1000,
        errors=errors,
        conns=conns,
    )


Driver = Wrk | PyDriver


def pick(force_python: bool, workdir: Path) -> Driver:
    """wrk if installed (and not overridden), else the Python driver."""
    binary = None if force_python else shutil.which("wrk")
    return Wrk(binary, workdir) if binary else PyDriver()


def paced_p50(port: int, body: Path, count: int, pause_s: float) -> float:
    """p50 latency (ms) of ``count`` requests on one connection with ``pause_s`` between.

    wrk and the driver above send back to back, which keeps every process hot; real
    clients pause, and on a VM a process woken from idle answers measurably slower.
    """
    import socket

    data = body.read_bytes()
    request = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    latencies: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            t0 = time.perf_counter()
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536) or b"!"
            head, _, rest = buf.partition(b"\r\n\r\n")
            low = head.lower()
            i = low.find(b"content-length:")
            size = int(low[i + 15 :].split(b"\r\n", 1)[0]) if i >= 0 else 0
            while len(rest) < size:
                rest += sock.recv(65536)
            latencies.append(time.perf_counter() - t0)
            time.sleep(pause_s)
    return percentile(sorted(latencies), 50) * 1000
