"""Child processes for the benchmark: start in their own group, wait for a port, kill, RSS.

Every process the benchmark starts goes through :class:`Procs`, so one ``close()`` in
a ``finally`` ends all of them (and their children) whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:g}s")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A GET on loopback: (status, body); connection errors raise ``OSError``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before serving")
        with contextlib.suppress(OSError):
            if http_get(url, 0.5)[0] == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:g}s")


@dataclass(frozen=True)
class Rss:
    """Resident memory of a process tree, in MiB: now (VmRSS) and peak (VmHWM)."""

    rss_mb: float
    hwm_mb: float
    processes: int


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc/PID/task/*/children``)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree_rss(pid: int) -> Rss:
    """RSS of ``pid`` plus all its descendants (uvicorn workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += children(p)
    rss = hwm = 0
    for p in pids:
        with contextlib.suppress(OSError):
            rss += _status_kb(p, "VmRSS")
            hwm += _status_kb(p, "VmHWM")
    return Rss(round(rss / 1024, 1), round(hwm / 1024, 1), len(pids))


class Procs:
    """Owns every child process; :meth:`close` kills their process groups."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stderr_to: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session; output goes to ``log_dir/name.log``.

        ``stderr_to`` sends stderr elsewhere (``"/dev/null"`` or a file path).
        """
        out = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        err = open(stderr_to, "wb") if stderr_to else subprocess.STDOUT  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        finally:
            out.close()
            if not isinstance(err, int):
                err.close()
        self._procs.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The end of a child's output log, for error messages."""
        path = self.log_dir / (name if name.endswith(".stderr") else f"{name}.log")
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``grace``."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The group may outlive its leader (uvicorn workers): kill it either way.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)

    def close(self) -> None:
        """Stop every process started here, newest first."""
        while self._procs:
            _, proc = self._procs.pop()
            self.stop(proc)
