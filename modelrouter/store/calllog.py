"""The call log of one process: records in, the store (or the spool) out.

:class:`CallLog` is what the runtime holds: :meth:`CallLog.put` on the request path
(an append to a bounded queue), a writer task and a retention task in between
(:mod:`modelrouter.store.writer`, :mod:`modelrouter.store.retention`), and
:meth:`CallLog.health` for ``/health``. With ``[store] url = "none"`` it keeps
nothing and costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.settings import StoreSettings
from modelrouter.store import migrate, retention
from modelrouter.store.engine import StoreError, StoreURL, make_engine, resolve, spool_dir
from modelrouter.store.record import CallRecord
from modelrouter.store.sink import Sink
from modelrouter.store.spool import Spool
from modelrouter.store.writer import OK, Writer

log = logging.getLogger("modelrouter.store")

START_TIMEOUT_S = 10.0
"""How long start-up waits for a PostgreSQL store before serving without it (spooling)."""
FINISH_TIMEOUT_S = 10.0
"""At shutdown, how long the writer may spend writing before it spools the rest."""
RETENTION_EVERY_S = 3600.0
RETENTION_FIRST_S = 60.0


class CallLog:
    """One process's call log over the store a config names (or none)."""

    def __init__(
        self,
        settings: StoreSettings,
        directory: str | None,
        *,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.settings = settings
        self.store: StoreURL | None = resolve(settings, directory)
        self._redact = redact
        self.writer: Writer | None = None
        self.reader: AsyncEngine | None = None
        """The engine admin queries use (``None``: no store)."""
        self._writer_engine: AsyncEngine | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        if self.store is not None:
            self._spool = Spool(spool_dir(settings, self.store, directory))

    @property
    def enabled(self) -> bool:
        """Whether records are kept (a store is configured)."""
        return self.store is not None

    def put(self, record: CallRecord) -> None:
        """Hand one record to the writer (the request path: never waits)."""
        if self.writer is not None:
            self.writer.put(record)

    async def start(self) -> None:
        """Open the store, check (SQLite: upgrade) its schema, start the writer.

        Raises :class:`StoreError` when the store must not be used (a schema older or
        newer than this code, a SQLite file that cannot be opened). A PostgreSQL store
        that does not answer is not an error: records are spooled until it does.
        """
        store = self.store
        if store is None:
            return
        self._writer_engine = make_engine(
            store, name="modelrouter-writer", pool_size=2, writer=True
        )
        self.reader = make_engine(store, name="modelrouter")
        sink = Sink(self._writer_engine)
        self.writer = Writer(
            sink,
            self._spool,
            queue_size=self.settings.queue_size,
            verify=self._verify,
            redact=self._redact,
        )
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await migrate.prepare(store, self._writer_engine)
        except StoreError:
            await self._dispose()
            raise
        except (Exception, TimeoutError) as err:
            if store.dialect == "sqlite":
                await self._dispose()
                raise StoreError(f"cannot open the store {store.safe()}: {err}") from err
            self.writer._down(err)
            log.error("call log: the store does not answer yet; spooling records until it does")
        else:
            self.writer.state, self.writer.verified = OK, True
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self.writer.run(self._stop), name="modelrouter-calllog"),
            asyncio.create_task(self._retention(), name="modelrouter-retention"),
        ]

    async def _verify(self) -> None:
        assert self.store is not None and self._writer_engine is not None
        current = await migrate.state(self._writer_engine)
        if current.status != "current":
            raise StoreError(migrate.behind_message(self.store, current.current))

    async def _retention(self) -> None:
        assert self._writer_engine is not None
        await asyncio.sleep(RETENTION_FIRST_S)
        while True:
            try:
                gone = await retention.sweep(self._writer_engine, self.settings.retention_days)
                if gone:
                    log.info("call log: %d record(s) past retention deleted", gone)
            except Exception as err:
                log.warning("call log: retention sweep failed: %s", self._redact(str(err)))
            await asyncio.sleep(RETENTION_EVERY_S)

    async def aclose(self) -> None:
        """Stop: write (or spool) every queued record, then close the store."""
        if self.writer is None:
            return
        self._stop.set()
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.writer.finish(FINISH_TIMEOUT_S)
        await self._dispose()

    async def _dispose(self) -> None:
        for engine in (self._writer_engine, self.reader):
            if engine is not None:
                await engine.dispose()
        self._writer_engine = self.reader = None

    def health(self) -> dict[str, Any]:
        """The store's state for ``/health``."""
        if self.store is None:
            return {"state": "off"}
        w = self.writer
        if w is None:
            return {"state": "starting", "engine": self.store.dialect}
        return {
            "state": w.state,
            "engine": self.store.dialect,
            "url": self.store.safe(),
            "queue_depth": len(w.queue),
            "spool_depth": w.spool.depth,
            "spool_dir": str(w.spool.directory),
            "spool_error": w.spool_error,
            "written": w.written,
            "spooled": w.spooled,
            "dropped": w.dropped,
            "rejected": w.rejected,
            "last_error": w.last_error,
        }
