"""The call log's writer: a bounded queue in, the store (or the spool) out.

The front door puts each record on :attr:`Writer.queue` (an append; the request path
never waits on the store). A task wakes every :data:`FLUSH_S`, takes what has
gathered, and writes it as one batch (:class:`~modelrouter.store.sink.Sink`).

When a write fails or times out, the store is *down*: the batch and everything after
it go to the spool (:class:`~modelrouter.store.spool.Spool`), and the writer retries
the store with a growing pause. Once it answers (and its schema is current), the
spool is replayed oldest first, with new records still appended behind it, so the
store receives every record in order; replayed rows are de-duplicated by id, so each
lands exactly once. A store that is up but slower than the traffic is treated the
same way once the queue passes :data:`HIGH_WATER`: the spool absorbs the burst and
the store catches up at its own pace.

Records are dropped (and counted) only when the queue is full: the store *and* the
spool have both been failing (a full disk) for as long as the queue lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson

from modelrouter.store.engine import StoreError
from modelrouter.store.record import CallRecord, Row, row_dict, row_of
from modelrouter.store.sink import BadRows, Sink
from modelrouter.store.spool import Spool

log = logging.getLogger("modelrouter.store")

FLUSH_S = 0.2
"""How long records gather before a batch. Bigger batches cost less per record (each
commit rewrites every index's last pages): measured with the SQLite store at about
8k requests/s, the router spent 146, 135 and 128 us of CPU a request flushing every 50,
200 and 500 ms (108 with no store). 200 ms keeps records visible within a moment."""
BATCH_MAX = 2000
"""Most records in one transaction."""
HIGH_WATER = 10 * BATCH_MAX
"""Queue length past which the writer spools rather than waits on a slow store."""
WRITE_TIMEOUT_S = 10.0
"""A batch write taking longer than this counts as the store being down."""
DRAIN_SLICE_S = 0.25
"""Spool replay runs in slices this long, between which new records are taken in."""
ORPHAN_SCAN_S = 30.0
"""How often the spool directory is checked for dead processes' segments."""
RETRY_MIN_S, RETRY_MAX_S = 0.5, 5.0

OK, CATCHING_UP, DOWN, SCHEMA = "ok", "catching_up", "down", "schema_outdated"


class Writer:
    """Moves records from the queue into the store, or into the spool when it cannot."""

    def __init__(
        self,
        sink: Sink,
        spool: Spool,
        *,
        queue_size: int,
        verify: Callable[[], Awaitable[None]],
        redact: Callable[[str], str] = str,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.queue: deque[CallRecord] = deque()
        self.queue_size = queue_size
        self._verify = verify
        self._redact = redact
        self.state = DOWN
        self.verified = False
        """Whether the store's schema was checked since it was last reached."""
        self.last_error: str | None = None
        self.spool_error: str | None = None
        self.written = 0
        self.spooled = 0
        self.dropped = 0
        self.rejected = 0
        self._retry_at = 0.0
        self._backoff = RETRY_MIN_S
        self._spool_retry_at = 0.0
        self._next_scan = 0.0
        self._closed = False

    # --- the request side ------------------------------------------------------------

    def put(self, record: CallRecord) -> None:
        """Queue one record (never blocks; a full queue drops and counts it)."""
        if len(self.queue) >= self.queue_size:
            self.dropped += 1
            return
        if self._closed:
            # After shutdown began: straight to the spool, or it would be lost.
            self._spool_now([row_of(record)])
            return
        self.queue.append(record)

    # --- the writer task -------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set; :meth:`finish` then empties the queue."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await stop.wait()
            try:
                await self.cycle()
            except Exception:
                # A bug here must not end the writer: records would pile up unseen.
                log.exception("call log writer failed; retrying")

    async def cycle(self) -> None:
        """One round: take the queue, write or spool it, replay the spool if due."""
        now = time.monotonic()
        if now >= self._next_scan:
            self._next_scan = now + ORPHAN_SCAN_S
            await self._adopt()
        if self.state == OK and not self.spool.pending and len(self.queue) <= HIGH_WATER:
            while self.queue:  # everything gathered, a transaction per BATCH_MAX
                batch = self._take(BATCH_MAX)
                rows = [row_of(r) for r in batch]
                if not await self._store(rows, dedupe=False):
                    await self._spool(batch, rows)
                    return
            return
        while self.queue:
            batch = self._take(BATCH_MAX)
            if not await self._spool(batch, [row_of(r) for r in batch]):
                break
        if time.monotonic() >= self._retry_at:
            await self._drain(DRAIN_SLICE_S)

    async def finish(self, timeout_s: float) -> None:
        """Shutdown: write what is queued (or spool it), replay the spool while time
        allows, then spool whatever is left. No record is lost unless the disk is."""
        deadline = time.monotonic() + timeout_s
        self._retry_at = 0.0
        while self.queue and time.monotonic() < deadline:
            before = (len(self.queue), self.spool.depth)
            await self.cycle()
            if (len(self.queue), self.spool.depth) == before:
                break  # neither store nor spool took anything
        if self.spool.pending and self.state != DOWN:
            await self._drain(max(0.0, deadline - time.monotonic()))
        self._closed = True
        if self.queue:
            rows = [row_of(r) for r in self.queue]
            self.queue.clear()
            self._spool_now(rows)
        await asyncio.to_thread(self.spool.close)
        await self.sink.drop()

    # --- parts -----------------------------------------------------------------------

    def _take(self, n: int) -> list[CallRecord]:
        q = self.queue
        return [q.popleft() for _ in range(min(n, len(q)))]

    async def _store(self, rows: Sequence[Row], *, dedupe: bool) -> bool:
        """Write rows; on failure mark the store down and return False."""
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                n = await self.sink.write(rows, dedupe=dedupe)
        except BadRows:
            n = await self._one_by_one(rows)
        except (Exception, TimeoutError) as err:
            self._down(err)
            return False
        self.written += n
        return True

    async def _one_by_one(self, rows: Sequence[Row]) -> int:
        """A batch the store refused: keep every row it takes, set the others aside."""
        n = 0
        for row in rows:
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    n += await self.sink.write([row], dedupe=True)
            except BadRows as err:
                self._reject(row, str(err))
        return n

    def _reject(self, row: Row, why: str) -> None:
        self.rejected += 1
        log.error("call log: the store refused record %s: %s", row[0], self._redact(why))
        try:
            self.spool.directory.mkdir(parents=True, exist_ok=True)
            line = orjson.dumps({"error": self._redact(why), "row": row_dict(row)}) + b"\n"
            with Path(self.spool.directory / "rejected.jsonl").open("ab") as f:
                f.write(line)
        except OSError as err:
            log.error("call log: cannot keep the refused record either: %s", err)

    async def _spool(self, batch: list[CallRecord], rows: list[Row]) -> bool:
        """Append to the spool; on failure put the batch back at the queue's head."""
        if self.spool_error is not None and time.monotonic() < self._spool_retry_at:
            self.queue.extendleft(reversed(batch))
            return False
        try:
            self.spooled += await asyncio.to_thread(self.spool.append, rows)
        except Exception as err:  # a full disk above all; whatever it is, keep the records
            if self.spool_error is None:
                log.error("call log: cannot write the spool (%s): records wait in memory", err)
            self.spool_error = f"{type(err).__name__}: {err}"
            self._spool_retry_at = time.monotonic() + RETRY_MAX_S
            self.queue.extendleft(reversed(batch))
            return False
        if self.spool_error is not None:
            log.warning("call log: the spool takes records again")
        self.spool_error = None
        return True

    def _spool_now(self, rows: list[Row]) -> None:
        try:
            self.spooled += self.spool.append(rows)
        except OSError as err:
            self.dropped += len(rows)
            self.spool_error = f"{type(err).__name__}: {err}"
            log.error("call log: %d record(s) lost at shutdown: %s", len(rows), err)

    async def _drain(self, budget_s: float) -> None:
        """Reach the store, then replay the spool for up to ``budget_s``."""
        if not self.verified:
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await self._verify()
            except (Exception, TimeoutError) as err:
                self._down(err, schema=isinstance(err, StoreError))
                return
            self.verified = True
        deadline = time.monotonic() + budget_s
        self.state = CATCHING_UP if self.spool.pending else OK
        while self.spool.pending:
            chunk = await asyncio.to_thread(self.spool.read, BATCH_MAX)
            if chunk is None:
                break
            if not await self._store(chunk.rows, dedupe=True):
                return
            await asyncio.to_thread(self.spool.done, chunk)
            if time.monotonic() >= deadline:
                break
        if not self.spool.pending:
            if self.last_error is not None:
                log.warning("call log: the store is back and the spool is replayed")
            self.state, self.last_error, self._backoff = OK, None, RETRY_MIN_S

    async def _adopt(self) -> None:
        try:
            found = await asyncio.to_thread(self.spool.adopt_orphans)
        except OSError as err:
            log.warning("call log: cannot scan the spool directory: %s", err)
            return
        if found:
            log.warning("call log: replaying %d record(s) spooled by a process that ended", found)

    def _down(self, err: BaseException, *, schema: bool = False) -> None:
        message = self._redact(f"{type(err).__name__}: {err}".rstrip(": "))
        if self.state not in (DOWN, SCHEMA):
            log.error("call log: the store is unavailable (%s); spooling records", message)
        self.state = SCHEMA if schema else DOWN
        self.verified = False
        self.last_error = message
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX_S)
