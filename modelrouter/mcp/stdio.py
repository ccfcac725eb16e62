"""``modelrouter mcp``: the MCP server over stdio.

stdout carries nothing but MCP: the access log, warnings and any library logging go
to stderr. The runtime starts (connection pools, health probes) before serving and
closes when the client closes stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from modelrouter.config import LoadedConfig, warn
from modelrouter.frontdoor import FrontDoor
from modelrouter.logs import AccessLog
from modelrouter.mcp.server import build_mcp_server
from modelrouter.runtime import Runtime


async def serve_stdio(cfg: LoadedConfig) -> None:
    """Start the runtime, serve MCP on stdin/stdout until EOF, then close the runtime."""
    rt = Runtime(cfg, log=AccessLog(sys.stderr))
    # Whoever started this process is the caller: no keys over stdio.
    mcp = build_mcp_server(FrontDoor(rt, local=True))
    await rt.start()
    try:
        await mcp.run_stdio_async()
    finally:
        await rt.aclose()


def run_stdio(cfg: LoadedConfig) -> None:
    """Blocking entry point used by the CLI."""
    # Before anything may log: a handler on stderr, never on stdout (the MCP wire).
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if cfg.is_demo:
        warn("no config found: serving MCP over stdio with the built-in demo config")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_stdio(cfg))
