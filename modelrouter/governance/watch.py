"""The store's keys in the key directory, kept fresh without a store read per request.

:class:`KeyService` is one router process's view of the keys in its store. At start it
loads every live key into the :class:`~modelrouter.governance.directory.KeyDirectory`
(by secret hash, with its team's limits and models); then a task polls the store's
change counter (one primary-key read every :data:`POLL_S`) and reloads everything
when it moved. Each write to keys or teams, from any worker, replica or the CLI,
bumps that counter in its own transaction, so a revoked, changed or rotated key takes
effect in every process within a poll and a reload: well inside the 2 s that
CONTRACT.md section 5 allows. The process that made a change reloads at once.

A second task writes the keys' ``last_used_at`` every :data:`FLUSH_S` from what the
directory noted (:attr:`~modelrouter.governance.directory.KeyDirectory.used`), and
once more at shutdown: one small transaction per period, never a write per request.

When the store cannot be read, the last keys loaded stay in force (and ``/health``
says since when); keys are never dropped because the store is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from modelrouter.governance.directory import KeyDirectory
from modelrouter.governance.keystore import CONFIG_ID, KeyStore
from modelrouter.governance.views import US, identities
from modelrouter.settings import Settings
from modelrouter.store import keyrows
from modelrouter.store.engine import StoreURL, make_engine

log = logging.getLogger("modelrouter.keys")

POLL_S = 0.5
"""How often each process reads the change counter."""
FLUSH_S = 5.0
"""How often each process writes ``last_used_at``."""
START_TIMEOUT_S = 5.0
"""How long start-up waits for the first load before serving without store keys
(refusing every request that has no config key, until the load succeeds)."""


class KeyService:
    """The keys of one router process: :attr:`store` for the admin API, and the watcher
    that feeds the directory. With no store (``url = "none"``), both are off."""

    def __init__(
        self,
        settings: Settings,
        store: StoreURL | None,
        directory: KeyDirectory,
        *,
        poll_s: float | None = None,
        flush_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.url = store
        self.directory = directory
        # Read at construction, not import: tests shorten the module's periods.
        self.poll_s = POLL_S if poll_s is None else poll_s
        self.flush_s = FLUSH_S if flush_s is None else flush_s
        self.clock = clock
        self.store: KeyStore | None = None
        """Keys and teams in the store (``None``: no store, or not started)."""
        self.keys: dict[str, dict[str, Any]] = {}
        """The store keys last loaded, by id (what ``GET /v1/key`` reads)."""
        self.teams: dict[str, dict[str, Any]] = {}
        """The run-time teams last loaded, by name."""
        self.version: int | None = None
        self.loaded_at: float | None = None
        self.last_error: str | None = None
        self.reloads = 0
        self._reader: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        if store is not None:
            directory.expect_virtual()

    @property
    def reader(self) -> AsyncEngine | None:
        """The engine reads go through (``None``: no store, or not started)."""
        return self._reader

    @property
    def enabled(self) -> bool:
        """Whether virtual keys exist at all (a store is configured)."""
        return self.url is not None

    async def start(self) -> None:
        """Open the store's engines, load the keys, start polling and flushing."""
        if self.url is None:
            return
        self._writer = make_engine(
            self.url, name="modelrouter-keys-writer", pool_size=1, writer=True
        )
        self._reader = make_engine(self.url, name="modelrouter-keys", pool_size=1)
        self.store = KeyStore(self.settings, self._writer, self._reader, clock=self.clock)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await self.load()
        except (Exception, TimeoutError) as err:
            self._failed(err)
        self._tasks = [
            asyncio.create_task(self._every(self.poll_s, self.refresh), name="modelrouter-keys"),
            asyncio.create_task(self._every(self.flush_s, self.flush), name="modelrouter-used"),
        ]

    async def aclose(self) -> None:
        """Stop the tasks, write the last ``last_used_at`` times, close the engines."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._writer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(START_TIMEOUT_S):
                    await self.flush()
        for engine in (self._writer, self._reader):
            if engine is not None:
                await engine.dispose()
        self._writer = self._reader = self.store = None

    async def load(self) -> None:
        """Read every key and team and swap them into the directory."""
        assert self._reader is not None
        async with self._lock:
            seen, key_rows, team_rows = await keyrows.snapshot(self._reader)
            found = identities(key_rows, team_rows, self.settings, self.clock())
            self.directory.replace_virtual(found)
            self.keys = {row["id"]: row for row in key_rows}
            self.teams = {row["name"]: row for row in team_rows}
            self.version, self.loaded_at = seen, self.clock()
            self.reloads += 1
        if self.last_error is not None:
            log.warning("keys: the store answers again; %d key(s) loaded", len(found))
        self.last_error = None

    async def refresh(self) -> None:
        """Reload if the store's change counter moved since the last load."""
        assert self._reader is not None
        async with self._reader.connect() as conn:
            seen = await keyrows.version(conn)
        if seen != self.version:
            await self.load()
        elif self.last_error is not None:
            self.last_error = None

    async def flush(self) -> None:
        """Write the ``last_used_at`` noted since the last flush (times not written
        go back to the directory, to be tried again)."""
        assert self._writer is not None
        used, self.directory.used = self.directory.used, {}
        rows = [(k, int(t * US)) for k, t in used.items() if not k.startswith(CONFIG_ID)]
        if not rows:
            return
        try:
            async with self._writer.begin() as conn:
                await keyrows.mark_used(conn, sorted(rows))
        except BaseException:
            for key_id, t in used.items():
                self.directory.used[key_id] = max(t, self.directory.used.get(key_id, t))
            raise

    async def _every(self, period: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await job()
            except Exception as err:
                self._failed(err)

    def _failed(self, err: BaseException) -> None:
        text = f"{type(err).__name__}: {err}"[:300]
        if self.last_error is None:
            # Once per outage, not every poll. Messages from the drivers name the host,
            # never the password (the URL is not part of them).
            log.error("keys: cannot read the store (%s); the keys loaded last stay in force", text)
        self.last_error = text

    def health(self) -> dict[str, Any]:
        """The keys' side of ``/health`` (counts, never a secret or a hash)."""
        if self.url is None:
            return {"state": "off", **self.directory.describe()}
        return {
            "state": "ok" if self.last_error is None and self.version is not None else "stale",
            "version": self.version,
            "loaded_at": self.loaded_at,
            "last_error": self.last_error,
            **self.directory.describe(),
        }
