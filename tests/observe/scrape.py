"""Reading ``GET /metrics`` the way Prometheus does, for assertions."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import httpx2
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
"""A sample's labels, sorted by name."""
Samples = dict[str, dict[Labels, float]]
"""Sample name (``..._total``, ``..._bucket``, ...) -> labels -> value."""


def parse(text: str) -> Samples:
    """Every sample of an exposition, as prometheus_client's parser reads it."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = tuple(sorted(s.labels.items()))
            assert key not in out.get(s.name, {}), f"duplicate sample {s.name}{key}"
            out.setdefault(s.name, {})[key] = s.value
    return out


def scrape(url: str, key: str | None = None) -> Samples:
    """``GET url/metrics`` parsed (200 required)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    resp = httpx2.get(url + "/metrics", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(resp.text)


def labels(**values: str) -> Labels:
    """A labels key from keyword arguments."""
    return tuple(sorted(values.items()))


def nonzero(samples: Samples, name: str) -> dict[Labels, float]:
    """The series of ``name`` whose value is not 0 (counters that moved)."""
    return {k: v for k, v in samples.get(name, {}).items() if v}


def label_values(samples: Samples) -> set[str]:
    """Every label value of every sample."""
    return {v for series in samples.values() for key in series for _, v in key}


class Expected:
    """What a test sent, counted the way the metrics should count it."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[Labels, float]] = {}
        self._lock = threading.Lock()  # requests may be sent from several threads

    def add(self, name: str, n: float = 1, **values: str) -> None:
        """Count ``n`` more of series ``name{values}``."""
        if n:
            key = labels(**values)
            with self._lock:
                series = self.counts.setdefault(name, {})
                series[key] = series.get(key, 0) + n

    def of(self, name: str) -> Mapping[Labels, float]:
        """The expected non-zero series of ``name``."""
        return dict(self.counts.get(name, {}))
