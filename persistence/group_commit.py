"""Group commit in front of a Store: updates arriving close together share one transaction.

One task (``run``) owns all writes. While a commit is in flight, new entries gather; the
next commit takes them all (optionally after a short window). A failing store is retried
with capped backoff, entries stay queued in order, and the number of unsaved entries is
bounded: past the bound ``submit`` refuses, so callers can push back on their clients
instead of dropping data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from persistence.base import LogEntry, Store

logger = logging.getLogger(__name__)

Committed = Callable[[int], None]  # called with the entry's seq once it is durable


class BacklogFull(Exception):
    """Too many entries are waiting for the store; refuse the write and let the client retry."""


@dataclass(frozen=True, slots=True)
class Persisted:
    seq: int
    at: float  # unix seconds of the commit


class GroupCommitWriter:
    def __init__(
        self,
        store: Store,
        *,
        window_seconds: float = 0.0,
        max_backlog: int = 100_000,
        max_batch: int = 10_000,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._window = window_seconds
        self._max_backlog = max_backlog
        self._max_batch = max_batch
        self._max_backoff = max_backoff_seconds
        self._queue: deque[tuple[int, LogEntry, Committed | None]] = deque()
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self._next_ticket = 1
        self._committed_ticket = 0
        self._last_ticket: dict[str, int] = {}
        self._stopping = False
        self.healthy = True
        self.last_error: str | None = None
        self.last_persisted: dict[str, Persisted] = {}
        self.commits = 0
        self.entries_written = 0

    @property
    def backlog(self) -> int:
        return self._next_ticket - 1 - self._committed_ticket

    def has_room(self, count: int = 1) -> bool:
        return self.backlog + count <= self._max_backlog

    def submit(self, entry: LogEntry, on_committed: Committed | None = None) -> int:
        """Queue an entry; returns its ticket. Raises BacklogFull when the bound is reached."""
        if self._stopping:
            raise BacklogFull("writer is stopping")
        if not self.has_room():
            raise BacklogFull(f"{self.backlog} updates waiting for the store")
        ticket = self._next_ticket
        self._next_ticket += 1
        self._queue.append((ticket, entry, on_committed))
        self._last_ticket[entry.document] = ticket
        self._wakeup.set()
        return ticket

    async def wait_committed(self, ticket: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self._committed_ticket >= ticket)

    async def wait_document(self, document: str) -> None:
        """Wait until every entry of ``document`` submitted so far is durable."""
        ticket = self._last_ticket.get(document, 0)
        if ticket > self._committed_ticket:
            await self.wait_committed(ticket)

    async def wait_for_commit(self, after: int) -> None:
        """Wait until more than ``after`` commits are done (``commits`` counts them)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.commits > after)

    def document_pending(self, document: str) -> bool:
        return self._last_ticket.get(document, 0) > self._committed_ticket

    async def flush(self) -> None:
        """Wait until everything submitted so far is durable."""
        await self.wait_committed(self._next_ticket - 1)

    async def run(self) -> None:
        """Write batches until ``stop`` is called and the queue is drained."""
        backoff = 0.05
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._window > 0:
                await asyncio.sleep(self._window)
            batch = [self._queue[i] for i in range(min(len(self._queue), self._max_batch))]
            try:
                seqs = await self._store.append([entry for _, entry, _ in batch])
            except Exception as exc:  # every failure is retried: nothing queued may be dropped
                self.healthy = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "store write failed, retrying in %.2fs (%d updates waiting): %s",
                    backoff,
                    self.backlog,
                    self.last_error,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.05
            if not self.healthy:
                logger.info("store writes recovered; %d updates waiting", self.backlog)
            self.healthy = True
            self.last_error = None
            now = time.time()
            for _ in batch:
                self._queue.popleft()
            for (_, entry, on_committed), seq in zip(batch, seqs, strict=True):
                self.last_persisted[entry.document] = Persisted(seq, now)
                if on_committed is not None:
                    try:
                        on_committed(seq)
                    except Exception:  # a callback's bug must not stop the writer
                        logger.exception("commit callback failed for %r", entry.document)
            self.commits += 1
            self.entries_written += len(batch)
            async with self._progress:
                self._committed_ticket = batch[-1][0]
                self._progress.notify_all()

    def stop(self) -> None:
        """Refuse new entries; ``run`` returns once the queue is written."""
        self._stopping = True
        self._wakeup.set()

    def forget(self, document: str) -> None:
        """Drop per-document bookkeeping of an unloaded document with nothing pending."""
        if not self.document_pending(document):
            self._last_ticket.pop(document, None)
