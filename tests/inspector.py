"""The MCP Inspector CLI (npm ``@modelcontextprotocol/inspector``), installed on first use.

Where the Inspector comes from, first match wins:

1. ``$MODELROUTER_INSPECTOR``: path to its launcher (``.../node_modules/.bin/mcp-inspector``);
2. ``.ci/node`` in this checkout, where the first test that needs it installs the pinned
   version with ``npm install --prefix .ci/node`` (about 10 s once; a file lock makes
   parallel test runs wait for one install instead of racing).

Without Node.js and npm, or when the install fails (registry unreachable), the tests
that need it are skipped with the reason, unless ``MODELROUTER_REQUIRE_SERVICES=1``:
then they fail, so a CI machine that should run them cannot pass without them.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

from tests.subproc import ROOT

PACKAGE = "@modelcontextprotocol/inspector"
VERSION = "2.12.0"
"""Pinned: 2.12's ``--cli`` has ``--header`` and runs on Node 20."""
PINNED = f"{PACKAGE}@{VERSION}"
CACHE = ROOT / ".ci" / "node"
INSTALL_TIMEOUT_S = 300


def required(env: Mapping[str, str] | None = None) -> bool:
    """True when missing services must fail tests instead of skipping them."""
    env = os.environ if env is None else env
    return env.get("MODELROUTER_REQUIRE_SERVICES") == "1"


def unavailable(reason: str, env: Mapping[str, str] | None = None) -> NoReturn:
    """Skip the test, or fail it under ``MODELROUTER_REQUIRE_SERVICES=1``."""
    if required(env):
        pytest.fail(f"{reason} (MODELROUTER_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def install(cache: Path, env: Mapping[str, str]) -> Path | str:
    """The launcher in ``cache``, installing the pinned Inspector first if needed.

    Returns the launcher's path, or why it is not available.
    """
    launcher = cache / "node_modules" / ".bin" / "mcp-inspector"
    # Written after a complete install: a half-finished one (killed run) is redone.
    marker = cache / f".installed-{VERSION}"
    if marker.exists() and launcher.exists():
        return launcher
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None or shutil.which("node", path=env.get("PATH")) is None:
        return "Node.js and npm are not installed: the MCP Inspector CLI tests need them"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be installing right now
        if marker.exists() and launcher.exists():
            return launcher
        cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), PINNED]
        try:
            proc = subprocess.run(
                cmd,
                env={"npm_config_fetch_retries": "1", **env},
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"could not install {PINNED}: npm took over {INSTALL_TIMEOUT_S} s"
        if proc.returncode != 0 or not launcher.exists():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            return f"could not install {PINNED} with npm (registry unreachable?): {tail}"
        marker.write_text(PINNED + "\n")
    return launcher


@functools.cache
def _located() -> tuple[str, ...] | str:
    # Once per test session: a failed install is not retried by every test.
    given = os.environ.get("MODELROUTER_INSPECTOR")
    if given:
        node = shutil.which("node")
        if given.endswith((".js", ".mjs")):
            return ("node", given) if node else "MODELROUTER_INSPECTOR is a script; no node"
        return (given,)
    found = install(CACHE, os.environ)
    return (str(found),) if isinstance(found, Path) else found


def inspector() -> list[str]:
    """The command that runs the Inspector launcher; skips (or fails) if there is none."""
    found = _located()
    if isinstance(found, str):
        unavailable(found)
    return list(found)
