"""The directory where the workers of ``modelrouter serve --workers N`` keep their metrics.

``serve`` makes a fresh private directory (mode 0700) before the workers start, names
it in :data:`ENV` for them, and removes it when the server stops: every server run
counts from zero, and two servers on one machine never add up each other's numbers.
Each worker keeps its values there (:class:`~modelrouter.observe.tally.Tally`) and any
worker answering ``GET /metrics`` adds them all up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "MODELROUTER_METRICS_DIR"
"""Set by ``serve`` for its workers; not a setting (a directory left from another run
would add that run's numbers to this one's)."""


@contextmanager
def shared_directory() -> Iterator[str]:
    """A new metrics directory named in :data:`ENV` for the block; removed after it."""
    path = tempfile.mkdtemp(prefix="modelrouter-metrics-")
    before = os.environ.get(ENV)
    os.environ[ENV] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def from_environment() -> str | None:
    """The directory ``serve`` made for this worker, if any."""
    return os.environ.get(ENV) or None
