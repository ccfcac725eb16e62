"""This replica's name (``cluster.instance``): in ``/health``, the logs and metrics."""

from __future__ import annotations

import os
import socket

from modelrouter.settings import ClusterSettings, ServerSettings

WILDCARD = frozenset({"0.0.0.0", "::", "[::]", ""})


def instance_name(cluster: ClusterSettings, server: ServerSettings) -> str:
    """``cluster.instance``, else ``host:port`` of this server.

    Bound to a wildcard address the host part is the machine's name (a container's
    is unique per replica); with port 0 (any free port) the process id stands in for
    the port, so two processes on one machine never share a name.
    """
    if cluster.instance.strip():
        return cluster.instance.strip()
    host = server.host.strip()
    if host in WILDCARD:
        host = socket.gethostname()
    return f"{host}:{server.port or os.getpid()}"
