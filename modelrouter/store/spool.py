"""The spool: call rows that the store could not take, in local append-only files.

Each process appends to segments of its own, ``PREFIX.SEQ.jsonl`` (one JSON row per
line) in the spool directory, and holds an exclusive ``flock`` on ``PREFIX.lock``
while it lives. Segments are read back oldest first; a segment is deleted once every
row in it is in the store. A process that finds a lock it can take has found the
spool of a process that died (a crash, a killed worker): it adopts those segments and
replays them before its own, so no record waits for its writer to come back.

Writes are appended with ``O_APPEND`` and flushed to disk (``fsync``) before they
count as spooled. An append that fails (a full disk) is cut back to where it started,
so a half-written line never glues itself to the next one, and the error is raised
for the writer to report. Every method does blocking file I/O: the writer calls them
in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from modelrouter.store.record import Row, row_dict, row_from

SEGMENT_ROWS = 50_000
"""A segment is closed after this many rows (bounded files, deleted as they drain)."""


@dataclass(slots=True)
class Segment:
    """One spool file and how far it has been written to the store."""

    path: Path
    rows: int
    """Rows in the file not yet in the store."""
    offset: int = 0
    """Bytes already in the store."""
    lock: int | None = None
    """An adopted segment's owner lock, held until its segments are done."""
    lock_path: Path | None = None


@dataclass(slots=True)
class Chunk:
    """Rows read from a segment, to be confirmed with :meth:`Spool.done` once stored."""

    segment: Segment
    rows: list[Row]
    end: int
    """The offset after the last row read."""
    lines: int
    """Lines read (corrupt ones included)."""


@dataclass(slots=True)
class Spool:
    """This process's spool in ``directory`` (created on first use)."""

    directory: Path
    prefix: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(4)}")
    corrupt: int = 0
    """Lines that could not be read back (a crash mid-write): logged, skipped."""
    _segments: list[Segment] = field(default_factory=list)
    _active: Segment | None = None
    _seq: int = 0
    _lock_fd: int | None = None

    @property
    def depth(self) -> int:
        """Rows in the spool, not yet in the store."""
        return sum(s.rows for s in self._segments)

    @property
    def pending(self) -> bool:
        """Whether any row waits in the spool."""
        return any(s.rows for s in self._segments)

    def append(self, rows: Iterable[Row]) -> int:
        """Append rows to the active segment and flush them to disk; return how many."""
        lines = [orjson.dumps(row_dict(r)) + b"\n" for r in rows]
        if not lines:
            return 0
        segment = self._writable()
        data = b"".join(lines)
        fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        segment.rows += len(lines)
        if segment.rows >= SEGMENT_ROWS:
            self._active = None
        return len(lines)

    def _writable(self) -> Segment:
        if self._active is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._lock_fd is None:
                self._lock_fd = _lock(self.directory / f"{self.prefix}.lock", block=True)
            self._seq += 1
            self._active = Segment(self.directory / f"{self.prefix}.{self._seq:08d}.jsonl", 0)
            self._segments.append(self._active)
        return self._active

    def read(self, limit: int) -> Chunk | None:
        """Up to ``limit`` rows from the oldest segment with rows left (``None``: empty).

        The active segment is closed first when it is the one read, so rows appended
        from now on go after the ones being replayed.
        """
        for segment in self._segments:
            if segment.rows == 0:
                continue
            if segment is self._active:
                self._active = None
            return self._read(segment, limit)
        return None

    def _read(self, segment: Segment, limit: int) -> Chunk:
        rows: list[Row] = []
        lines = 0
        with segment.path.open("rb") as f:
            f.seek(segment.offset)
            end = segment.offset
            while len(rows) < limit:
                line = f.readline()
                if not line:
                    break
                end += len(line)
                lines += 1
                try:
                    rows.append(row_from(orjson.loads(line)))
                except (orjson.JSONDecodeError, AttributeError, TypeError):
                    self.corrupt += 1
        return Chunk(segment, rows, end, lines)

    def done(self, chunk: Chunk) -> None:
        """The chunk's rows are in the store: move past them; delete a finished segment."""
        segment = chunk.segment
        segment.offset = chunk.end
        segment.rows = max(0, segment.rows - chunk.lines)
        if segment.rows == 0 and segment is not self._active:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            self._segments.remove(segment)
            self._release_adopted(segment)

    def adopt_orphans(self) -> int:
        """Take over the segments of dead processes (oldest first); return rows adopted."""
        if not self.directory.is_dir():
            return 0
        adopted: list[Segment] = []
        for lock_path in sorted(self.directory.glob("*.lock")):
            owner = lock_path.name.removesuffix(".lock")
            if owner == self.prefix or any(s.lock_path == lock_path for s in self._segments):
                continue
            try:
                fd = _lock(lock_path, block=False)
            except (BlockingIOError, FileNotFoundError):
                continue  # alive, or adopted and finished by another process just now
            segments = []
            for path in sorted(self.directory.glob(f"{owner}.*.jsonl")):
                rows = _count_lines(path)
                if rows:
                    segments.append(Segment(path, rows))
                else:
                    path.unlink(missing_ok=True)
            if not segments:
                lock_path.unlink(missing_ok=True)
                os.close(fd)
                continue
            segments[-1].lock, segments[-1].lock_path = fd, lock_path
            adopted.extend(segments)
        # Orphans are older than anything this process spooled: they go first.
        self._segments[:0] = adopted
        return sum(s.rows for s in adopted)

    def _release_adopted(self, segment: Segment) -> None:
        if segment.lock is not None and segment.lock_path is not None:
            segment.lock_path.unlink(missing_ok=True)
            os.close(segment.lock)

    def close(self) -> None:
        """Release this process's lock; an empty spool leaves no files behind."""
        if self._lock_fd is None:
            return
        if not self.pending:
            for segment in self._segments:
                segment.path.unlink(missing_ok=True)
            (self.directory / f"{self.prefix}.lock").unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None


def _lock(path: Path, *, block: bool) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
