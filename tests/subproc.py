"""Child processes that run this checkout's code: ``modelrouter`` as a real command.

A child started outside the repository imports ``modelrouter`` through whatever the
interpreter's ``site-packages`` points at. With an editable install made from another
checkout (a venv shared by several worktrees) that is the other checkout's code, so
every child gets this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (this checkout)."""

CLI = [sys.executable, "-m", "modelrouter.cli"]
"""The ``modelrouter`` command, run by the interpreter running the tests."""

BIN = str(Path(sys.executable).parent)
"""The interpreter's scripts directory (the ``modelrouter`` script of an install)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) plus ``extra``, this checkout first on
    ``PYTHONPATH`` and the interpreter's scripts first on ``PATH``."""
    env = dict(os.environ if base is None else base)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join(p for p in (BIN, env.get("PATH")) if p)
    return env


def modelrouter_command() -> list[str]:
    """The installed ``modelrouter`` script next to this Python, else ``python -m``."""
    script = Path(BIN) / "modelrouter"
    return [str(script)] if script.exists() else list(CLI)


def command_shim(directory: Path) -> Path:
    """Write ``directory/modelrouter``, this checkout's CLI, and return ``directory``.

    For programs that start ``modelrouter`` from ``PATH`` with an environment of their
    own choosing (the MCP Inspector passes a child only ``PATH``, ``HOME`` and a few
    more), so ``PYTHONPATH`` cannot carry the checkout.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "modelrouter"
    shim.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "
        '-m modelrouter.cli "$@"\n'
    )
    shim.chmod(0o755)
    return directory


def wait_ready(proc: subprocess.Popen[str], url: str, timeout: float = 20) -> None:
    """Wait until ``GET url`` answers 200; raise with the server's stderr if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"server did not start: {err}")
        time.sleep(0.1)
