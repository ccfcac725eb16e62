"""Observability: Prometheus metrics (``GET /metrics``) and optional OpenTelemetry traces.

- :mod:`~modelrouter.observe.tally`: metric values as doubles that every worker of a
  server can read (one file per process), updated without locks or system calls.
- :mod:`~modelrouter.observe.families`: the metric names, labels and buckets.
- :mod:`~modelrouter.observe.metrics`: :class:`~modelrouter.observe.metrics.Metrics`,
  what the runtime feeds (call-log records, breaker transitions, probes, limits).
- :mod:`~modelrouter.observe.exposition`: the Prometheus text of all workers' values.
- :mod:`~modelrouter.observe.workers`: the shared directory ``serve --workers N`` sets up.
- :mod:`~modelrouter.observe.tracing`: traces when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
  (OpenTelemetry is imported only then, from :mod:`~modelrouter.observe.otel`).
"""
