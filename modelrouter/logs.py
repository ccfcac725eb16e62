"""One structured JSON line per request on stderr, written off the hot path.

The front door puts each request's :class:`~modelrouter.store.record.CallRecord` on
a queue (a few hundred nanoseconds); a daemon thread serializes (orjson writes the
dataclass as it is) and writes. Prompts and answers are never in these lines unless
``server.log_bodies`` is set.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import TextIO

import orjson

from modelrouter.store.record import CallRecord

_STOP = object()
FLUSH_S = 0.05
"""How long the writer lets records gather before one write."""


class AccessLog:
    """A background writer of JSON lines."""

    def __init__(self, stream: TextIO | None = None, *, instance: str | None = None) -> None:
        self._stream = stream
        # A replica's lines start with its name; added by the writer thread, so the
        # request path pays nothing for it.
        named = orjson.dumps({"instance": instance}).decode()
        self._head = named[:-1] + "," if instance else ""
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelrouter-log", daemon=True)
            self._thread.start()

    def emit(self, record: CallRecord) -> None:
        """Queue one record (not to be changed afterwards: the thread reads it later)."""
        self._queue.put(record)

    def stop(self) -> None:
        """Flush what is queued and stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        out = self._stream or sys.stderr
        while True:
            first = self._queue.get()
            # Let a burst gather: one wake-up and one write per FLUSH_S under load,
            # instead of a thread switch per request on the event loop's time.
            if first is not _STOP:
                time.sleep(FLUSH_S)
            lines: list[object] = []
            item: object = first
            while True:
                if item is _STOP:
                    self._write(out, lines)
                    return
                lines.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(out, lines)

    def _write(self, out: TextIO, lines: list[object]) -> None:
        head = self._head
        if head:
            text = "".join(head + orjson.dumps(rec).decode()[1:] + "\n" for rec in lines)
        else:
            text = "".join(orjson.dumps(rec).decode() + "\n" for rec in lines)
        try:
            out.write(text)
            out.flush()
        except (OSError, ValueError):
            pass
