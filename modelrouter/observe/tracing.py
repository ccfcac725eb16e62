"""Traces, only when an OTLP endpoint is configured: otherwise nothing is imported or done.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set and
``OTEL_SDK_DISABLED`` not ``true``: each worker sends a span per request, with a child
span per upstream attempt, to that endpoint over OTLP/HTTP (protobuf), following the
OpenTelemetry GenAI conventions (:mod:`modelrouter.observe.otel`). The other standard
variables apply as the SDK reads them (``OTEL_SERVICE_NAME``, default ``modelrouter``;
``OTEL_RESOURCE_ATTRIBUTES``; ``OTEL_EXPORTER_OTLP_HEADERS``; ``OTEL_BSP_*``). It needs
the optional packages: ``pip install 'modelrouter[otel]'``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Protocol

from modelrouter.config import LoadedConfig
from modelrouter.store.record import CallRecord

log = logging.getLogger("modelrouter.tracing")

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class Tracer(Protocol):
    """Turns finished requests into spans."""

    def record(self, record: CallRecord) -> None:
        """Send the spans of one finished request (queued; exported in the background)."""

    def shutdown(self) -> None:
        """Export what is queued and stop (blocks: call it off the event loop)."""


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARS)


def from_env(config: LoadedConfig, environ: Mapping[str, str] = os.environ) -> Tracer | None:
    """A tracer when the environment asks for one and OpenTelemetry is installed."""
    if not wanted(environ):
        return None
    try:
        from modelrouter.observe.otel import OtelTracer
    except ImportError as err:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed (%s): "
            "no traces; pip install 'modelrouter[otel]'",
            err,
        )
        return None
    return OtelTracer(config)
