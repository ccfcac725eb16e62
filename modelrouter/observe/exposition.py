"""``GET /metrics``'s text: every worker's tally added up, in Prometheus's format.

prometheus_client writes the text (or OpenMetrics, when the scraper asks for it);
what it writes comes from :class:`Exposition`, a collector over the tallies: counters
and histograms summed over every process of the server, the living and the gone,
gauges over the living only. ``modelrouter_model_state`` is read from the answering
worker's health tracker at scrape time (workers share health only through
``[cluster]``, so it is that worker's view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from modelrouter.health import STATES, HealthTracker
from modelrouter.observe import families as f
from modelrouter.observe.metrics import Metrics
from modelrouter.observe.tally import Part, Reader

_BY_NAME = {fam.name: fam for fam in f.ALL}

Sums = dict[str, dict[tuple[str, ...], list[float]]]
"""Metric name -> label values -> the series' slots added up over processes."""


def add_up(parts: list[Part]) -> Sums:
    """Every series of ``parts`` summed (gauges over living processes only)."""
    sums: Sums = {fam.name: {} for fam in f.ALL}
    for part in parts:
        values = part.values
        size = len(values)
        for slot, name, labels in part.entries:
            fam = _BY_NAME.get(name)
            if fam is None or (fam.kind == "gauge" and not part.alive):
                continue
            width = fam.width
            if slot + width > size:
                continue  # cannot happen with the writer's ordering; never trust a file
            acc = sums[name].get(labels)
            if acc is None:
                acc = sums[name][labels] = [0.0] * width
            for i in range(width):
                acc[i] += values[slot + i]
    return sums


def _family(fam: f.Family, series: dict[tuple[str, ...], list[float]]) -> Metric:
    labels = list(fam.labels)
    if fam.kind == "counter":
        counter = CounterMetricFamily(fam.name, fam.help, labels=labels)
        for values, acc in sorted(series.items()):
            counter.add_metric(list(values), acc[0])
        return counter
    if fam.kind == "gauge":
        gauge = GaugeMetricFamily(fam.name, fam.help, labels=labels)
        for values, acc in sorted(series.items()):
            gauge.add_metric(list(values), acc[0])
        return gauge
    histogram = HistogramMetricFamily(fam.name, fam.help, labels=labels)
    # repr: as prometheus_client writes ``le`` (0.005, 1.0, 600.0).
    bounds = [repr(float(b)) for b in fam.buckets] + ["+Inf"]
    for values, acc in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for bound, count in zip(bounds, acc, strict=False):
            cumulative += count
            buckets.append((bound, cumulative))
        histogram.add_metric(list(values), buckets, acc[-1])
    return histogram


class Exposition(Collector):
    """The collector behind ``GET /metrics`` for one worker."""

    def __init__(self, metrics: Metrics, tracker: HealthTracker) -> None:
        self._metrics = metrics
        self._tracker = tracker
        directory = metrics.directory
        self._reader = Reader(directory) if directory is not None else None

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format ``accept`` prefers, and its content type."""
        encode: Callable[[Collector], bytes]
        encode, content_type = choose_encoder(accept or "")
        # This worker's call-log numbers as of now; the others' are at most a second old.
        self._metrics.sample_log()
        return encode(self), content_type

    def parts(self) -> list[Part]:
        """Every process's tally (just this one's without a shared directory)."""
        if self._reader is not None:
            return self._reader.parts()
        tally = self._metrics.tally
        return [Part(True, tally.entries(), tally.values)]

    def collect(self) -> Iterator[Metric]:
        """Every family, in :data:`~modelrouter.observe.families.ALL` order."""
        sums = add_up(self.parts())
        for fam in f.ALL:
            if fam is f.MODEL_STATE:
                yield self._model_state()
            else:
                yield _family(fam, sums[fam.name])

    def _model_state(self) -> Metric:
        fam = f.MODEL_STATE
        gauge = GaugeMetricFamily(fam.name, fam.help, labels=list(fam.labels))
        tracker = self._tracker
        for model in tracker.models:
            now = tracker.state(model)
            for state in STATES:
                gauge.add_metric([model, state], 1.0 if state == now else 0.0)
        return gauge
