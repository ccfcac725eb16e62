"""Spans of finished requests, sent over OTLP/HTTP (imported only when traces are wanted).

A request is one ``SERVER`` span named ``{operation} {requested model}`` with the
OpenTelemetry GenAI attributes (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.provider.name`` and the older ``gen_ai.system``,
``gen_ai.usage.input_tokens``/``output_tokens``), ``http.response.status_code`` and
``error.type`` when it failed; each upstream attempt is a ``CLIENT`` child span with
the upstream model id, its provider, status and outcome.

Spans are made from the call-log record when the request ends, so they cost nothing
while it runs. The record keeps each attempt's duration, not its start: attempt spans
are laid end to end from the request's start (a backoff pause before a retry is not
shown as a gap, so a retried attempt may be drawn slightly early).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from modelrouter import __version__
from modelrouter.config import LoadedConfig
from modelrouter.store.record import CallRecord

GENAI_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
}
"""Provider kinds whose ``gen_ai.provider.name`` the conventions spell otherwise (or
name at all); other kinds go as they are."""
OPERATIONS = {"/v1/embeddings": "embeddings"}
"""Endpoints that are not a chat (every other door is translated to one)."""


class OtelTracer:
    """A private tracer provider (the process's global one is left alone) with a batch
    exporter to the endpoint the environment names."""

    def __init__(self, config: LoadedConfig) -> None:
        settings = config.settings
        self._kind = {
            name: GENAI_PROVIDER.get(opts.kind, opts.kind)
            for name, opts in config.providers.items()
        }
        self._upstream = {name: m.model or name for name, m in settings.models.items()}
        attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "modelrouter"}
        self._provider = TracerProvider(resource=Resource.create(attributes))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._tracer = self._provider.get_tracer("modelrouter", __version__)

    def record(self, r: CallRecord) -> None:
        """Queue the spans of one finished request."""
        end = int(r.ts * 1e9)
        start = end - int(r.latency_ms * 1e6)
        operation = OPERATIONS.get(r.endpoint, "chat")
        asked = r.requested_model or r.route or ""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "http.response.status_code": r.status,
            "modelrouter.request_id": r.request_id,
            "modelrouter.surface": r.surface,
            "modelrouter.endpoint": r.endpoint,
            "modelrouter.stream": r.stream,
            "modelrouter.fallbacks": r.fallbacks,
        }
        optional = {
            "gen_ai.request.model": r.requested_model,
            "modelrouter.route": r.route,
            "modelrouter.model": r.model,
            "modelrouter.provider": r.provider,
            "modelrouter.team": r.team,
            "gen_ai.usage.input_tokens": r.input_tokens,
            "gen_ai.usage.output_tokens": r.output_tokens,
            "modelrouter.cost_usd": r.cost_usd,
            "error.type": r.error_code,
        }
        if r.model is not None:
            optional["gen_ai.response.model"] = self._upstream.get(r.model, r.model)
        if r.provider is not None:
            optional["gen_ai.provider.name"] = optional["gen_ai.system"] = self._kind.get(
                r.provider, r.provider
            )
        attributes.update((k, v) for k, v in optional.items() if v is not None)
        span = self._tracer.start_span(
            f"{operation} {asked}".rstrip(),
            kind=SpanKind.SERVER,
            start_time=start,
            attributes=attributes,
        )
        if r.status >= 500:
            span.set_status(Status(StatusCode.ERROR, r.error_code))
        parent = trace.set_span_in_context(span)
        at = start
        for a in r.attempts:
            if a.outcome == "skipped":
                continue
            took = int(a.duration_ms * 1e6)
            upstream = self._upstream.get(a.model, a.model)
            provider = self._kind.get(a.provider, a.provider)
            child: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": upstream,
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "modelrouter.model": a.model,
                "modelrouter.provider": a.provider,
                "modelrouter.outcome": a.outcome,
            }
            if a.status is not None:
                child["http.response.status_code"] = a.status
            if a.outcome != "ok":
                child["error.type"] = a.outcome
            attempt = self._tracer.start_span(
                f"{operation} {upstream}",
                context=parent,
                kind=SpanKind.CLIENT,
                start_time=min(at, end),
                attributes=child,
            )
            if a.outcome != "ok":
                attempt.set_status(Status(StatusCode.ERROR, a.error))
            attempt.end(end_time=min(at + took, end))
            at += took
        span.end(end_time=end)

    def shutdown(self) -> None:
        """Export what is queued, then stop the exporter's thread."""
        self._provider.shutdown()
