"""Group commit in front of a Store: updates arriving close together share one transaction.

One task (``run``) owns all writes. While a commit is in flight, new entries gather; the
next commit takes them all (optionally after a short window). The number of unsaved
entries is bounded: past the bound ``submit`` refuses, so callers push back on their
clients instead of dropping data.

Two moments per entry. *Written*: its transaction is committed where a crash of this
process cannot lose it (``on_written``: the room relays it then, so peers never wait on the
disk). *Committed*: it also survives an OS crash or power loss (``on_committed``, every
``wait_*``, ``last_persisted``: what acknowledgements and joiners wait for). A store with a
two-step commit (``TwoStepStore``: SQLite writes the WAL, then fsyncs it) lets the two come
apart: while one fsync is in flight the next batches are written, and one fsync then covers
all of them. Any other store's ``append`` is both at once. A store that can also write
without a thread hop when nothing else holds it (``InlineAppend``: SQLite's WAL commit into
the OS page cache) is asked that first: the relay then goes on in the same loop turn.

The fsyncs are paced: one starts at most every ``sync_interval_seconds`` (a quiet hub syncs
at once), so under a steady stream of small commits many are covered by one fsync. Relays do
not wait for it (they need only *written*); acknowledgements and joiners wait at most the
interval longer.

Failures are sorted in one place (``is_transient``):
- transient (the database is unreachable, a timeout): the batch stays queued in order and
  is retried with capped backoff;
- anything else is treated as a property of the data. The batch is split by document and
  each document is written on its own; a document whose own write fails is *set aside*:
  its queued entries are dropped, ``on_set_aside`` is told (the hub closes its clients,
  who still hold the changes and re-send them when they reconnect) and it refuses new
  entries for ``quarantine_seconds``, while every other document keeps committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from persistence.base import LogEntry, Store, StoreUnavailable, TwoStepStore

logger = logging.getLogger(__name__)

Committed = Callable[[int], None]  # called with the entry's seq once it is durable
Written = Callable[[int], None]  # called with the entry's seq once a crash of this process cannot lose it
SetAside = Callable[[str, str], None]  # (document, reason) once a document is set aside
Stored = Callable[[str, int, int], None]  # (document, entries, bytes) after each commit


@runtime_checkable
class InlineAppend(Protocol):
    """A two-step store that can write a batch right away when that needs no waiting."""

    def try_append_unsynced(self, entries: Sequence[LogEntry]) -> list[int] | None:
        """The batch's seqs if it was written now (on this thread), None if it was not."""


class BacklogFull(Exception):
    """Too many entries are waiting for the store; refuse the write and let the client retry."""


class DocumentSetAside(BacklogFull):
    """The store refused this document's data; its writes are refused for a while."""


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying as is: the store is unreachable or slow, not the data bad."""
    return isinstance(exc, (StoreUnavailable, OSError, TimeoutError))


@dataclass(frozen=True, slots=True)
class Persisted:
    seq: int
    at: float  # unix seconds of the commit


class _Item(NamedTuple):
    ticket: int
    entry: LogEntry
    on_committed: Committed | None
    on_written: Written | None


class GroupCommitWriter:
    def __init__(
        self,
        store: Store,
        *,
        window_seconds: float = 0.0,
        sync_interval_seconds: float = 0.0,
        first_backoff_seconds: float = 0.05,
        max_backlog: int = 100_000,
        max_batch: int = 10_000,
        max_backoff_seconds: float = 2.0,
        quarantine_seconds: float = 60.0,
        on_set_aside: SetAside | None = None,
        on_stored: Stored | None = None,
    ) -> None:
        self._store = store
        self._window = window_seconds
        self._sync_interval = sync_interval_seconds
        self._first_backoff = first_backoff_seconds
        self._max_backlog = max_backlog
        self._max_batch = max_batch
        self._max_backoff = max_backoff_seconds
        self._quarantine_seconds = quarantine_seconds
        self.on_set_aside = on_set_aside  # settable after construction (the hub wires them)
        self.on_stored = on_stored
        # Called with (seq, entry) of every committed entry, after the commit (the change-event
        # publisher's in-memory tail of the committed log).
        self.on_committed_entries: Callable[[list[tuple[int, LogEntry]]], None] | None = None
        self._queue: deque[_Item] = deque()
        self._two_step_store = store if isinstance(store, TwoStepStore) else None
        self._two_step = self._two_step_store is not None
        self._inline_store = store if self._two_step and isinstance(store, InlineAppend) else None
        self._last_sync_start = float("-inf")
        # Written batches whose fsync is still to come (two-step stores only), oldest first.
        self._unsynced: deque[tuple[list[_Item], list[int]]] = deque()
        self._sync_wanted = asyncio.Event()
        self._resolved_ticket = 0  # every ticket up to here is written or set aside
        self._synced_ticket = 0  # ... and, for a two-step store, fsynced
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self._next_ticket = 1
        self._committed_ticket = 0
        self._last_ticket: dict[str, int] = {}
        self._set_aside_until: dict[str, float] = {}
        self._stopping = False
        self.healthy = True
        self.last_error: str | None = None
        self.last_persisted: dict[str, Persisted] = {}
        self.commits = 0
        self.entries_written = 0
        self.documents_set_aside = 0

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def has_room(self, count: int = 1) -> bool:
        return self.backlog + count <= self._max_backlog

    def set_aside(self, document: str) -> bool:
        """Whether ``document`` is set aside now (its writes are refused)."""
        until = self._set_aside_until.get(document)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._set_aside_until[document]
            return False
        return True

    def submit(
        self, entry: LogEntry, on_committed: Committed | None = None, on_written: Written | None = None
    ) -> int:
        """Queue an entry; returns its ticket. Raises BacklogFull when the bound is reached.

        ``on_written`` runs first, once a crash of this process cannot lose the entry;
        ``on_committed`` once it is durable (the same moment for a one-step store).
        """
        if self._stopping:
            raise BacklogFull("writer is stopping")
        if self.set_aside(entry.document):
            raise DocumentSetAside(f"the store refused {entry.document!r}; set aside for now")
        if not self.has_room():
            raise BacklogFull(f"{self.backlog} updates waiting for the store")
        ticket = self._next_ticket
        self._next_ticket += 1
        self._queue.append(_Item(ticket, entry, on_committed, on_written))
        self._last_ticket[entry.document] = ticket
        self._wakeup.set()
        return ticket

    async def wait_committed(self, ticket: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self._committed_ticket >= ticket)

    async def wait_document(self, document: str) -> None:
        """Wait until every entry of ``document`` submitted so far is durable (or set aside)."""
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
        """Write batches until ``stop`` is called and the queue is drained (and fsynced)."""
        if not self._two_step:
            await self._write_loop()
            return
        syncer = asyncio.create_task(self._sync_loop(), name="group-commit-sync")
        try:
            await self._write_loop()
            await self.flush()  # the syncer makes the last batches durable
        finally:
            syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncer

    async def _write_loop(self) -> None:
        backoff = self._first_backoff
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
                await self._write(batch)
            except Exception as exc:  # only transient failures reach here: retried, nothing dropped
                self.healthy = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "store write failed, retrying in %.2fs (%d updates waiting): %s",
                    backoff,
                    self.backlog,
                    self.last_error,
                )
                await self._advance()  # documents written before the failure are resolved
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = self._first_backoff
            if not self.healthy:
                logger.info("store writes recovered; %d updates waiting", self.backlog)
            self.healthy = True
            self.last_error = None
            await self._advance()

    async def _write(self, batch: list[_Item]) -> None:
        """Write one batch; a non-transient failure splits it by document (see the module doc)."""
        try:
            seqs = await self._append([item.entry for item in batch])
        except Exception as exc:
            if not is_transient(exc):
                await self._write_each_document(batch, exc)
                return
            raise
        self._written(batch, seqs, head=True)

    async def _append(self, entries: list[LogEntry]) -> list[int]:
        if self._inline_store is not None:
            seqs = self._inline_store.try_append_unsynced(entries)
            if seqs is not None:
                return seqs
        if self._two_step_store is not None:
            return await self._two_step_store.append_unsynced(entries)
        return await self._store.append(entries)

    async def _write_each_document(self, batch: list[_Item], first_error: Exception) -> None:
        by_document: dict[str, list[_Item]] = {}
        for item in batch:
            by_document.setdefault(item.entry.document, []).append(item)
        if len(by_document) == 1:
            self._set_document_aside(batch[0].entry.document, first_error)
            return
        for document, items in by_document.items():
            try:
                seqs = await self._append([item.entry for item in items])
            except Exception as exc:
                if is_transient(exc):
                    raise  # the whole rest of the batch is retried; written documents are gone from it
                self._set_document_aside(document, exc)
                continue
            self._written(items, seqs, head=False)

    def _written(self, items: list[_Item], seqs: list[int], *, head: bool) -> None:
        """``items`` are written: drop them from the queue (``head``: they are its first ones),
        tell their writers, and hand them to the syncer (or commit them: one-step store)."""
        if head:
            for _ in items:
                self._queue.popleft()
        else:
            done = {item.ticket for item in items}
            self._queue = deque(item for item in self._queue if item.ticket not in done)
        for item, seq in zip(items, seqs, strict=True):
            if item.on_written is not None:
                try:
                    item.on_written(seq)
                except Exception:  # a callback's bug must not stop the writer
                    logger.exception("write callback failed for %r", item.entry.document)
        if self._two_step:
            self._unsynced.append((items, seqs))
            self._sync_wanted.set()
        else:
            self._committed(items, seqs)

    async def _sync_loop(self) -> None:
        """Fsync what is written, one fsync at a time; each covers every batch written before it."""
        backoff = self._first_backoff
        store = self._two_step_store
        assert store is not None
        failing = False
        while True:
            if not self._unsynced:  # nothing written awaits its fsync (set-aside entries need none)
                if self._synced_ticket < self._resolved_ticket:
                    self._synced_ticket = self._resolved_ticket
                    await self._publish_progress()
                    continue
                self._sync_wanted.clear()
                await self._sync_wanted.wait()
                continue
            pause = self._last_sync_start + self._sync_interval - time.monotonic()
            if pause > 0:  # paced: what is written meanwhile shares the next fsync
                await asyncio.sleep(pause)
            self._last_sync_start = time.monotonic()
            target, covered = self._resolved_ticket, len(self._unsynced)
            try:
                await store.sync()
            except Exception as exc:  # the written batches stay unacknowledged and are synced again
                failing = True
                self.healthy = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("store sync failed, retrying in %.2fs: %s", backoff, self.last_error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if failing:
                failing = False
                logger.info("store sync recovered")
                self.healthy = True
                self.last_error = None
            backoff = self._first_backoff
            for _ in range(covered):
                self._committed(*self._unsynced.popleft())
            self._synced_ticket = max(self._synced_ticket, target)
            await self._publish_progress()

    def _committed(self, items: list[_Item], seqs: list[int]) -> None:
        """``items`` are durable: record them and tell whoever waits for them."""
        now = time.time()
        written: dict[str, list[int]] = {}
        for (_, entry, on_committed, _), seq in zip(items, seqs, strict=True):
            self.last_persisted[entry.document] = Persisted(seq, now)
            counts = written.setdefault(entry.document, [0, 0])
            counts[0] += 1
            counts[1] += len(entry.update)
            if on_committed is not None:
                try:
                    on_committed(seq)
                except Exception:  # a callback's bug must not stop the writer
                    logger.exception("commit callback failed for %r", entry.document)
        if self.on_stored is not None:
            for document, (entries, size) in written.items():
                self.on_stored(document, entries, size)
        if self.on_committed_entries is not None:
            try:
                self.on_committed_entries([(seq, item.entry) for item, seq in zip(items, seqs, strict=True)])
            except Exception:  # a listener's bug must not stop the writer
                logger.exception("committed-entries listener failed")
        self.commits += 1
        self.entries_written += len(items)

    def _set_document_aside(self, document: str, exc: Exception) -> None:
        dropped = sum(1 for item in self._queue if item.entry.document == document)
        self._queue = deque(item for item in self._queue if item.entry.document != document)
        self._set_aside_until[document] = time.monotonic() + self._quarantine_seconds
        self.documents_set_aside += 1
        reason = f"{type(exc).__name__}: {exc}"
        logger.error(
            "document %r set aside for %.0fs: the store refused its updates (%d dropped; its clients"
            " keep them and re-send on reconnect): %s",
            document,
            self._quarantine_seconds,
            dropped,
            reason,
        )
        if self.on_set_aside is not None:
            try:
                self.on_set_aside(document, reason)
            except Exception:
                logger.exception("set-aside callback failed for %r", document)

    async def _advance(self) -> None:
        """Everything before the oldest queued entry is resolved (written or set aside)."""
        self._resolved_ticket = self._queue[0].ticket - 1 if self._queue else self._next_ticket - 1
        if self._two_step:
            self._sync_wanted.set()  # set-aside entries need no fsync, but their waiters a sync pass
        await self._publish_progress()

    async def _publish_progress(self) -> None:
        """Waiters see an entry committed once it is resolved and (two-step store) fsynced."""
        committed = self._resolved_ticket
        if self._two_step:
            committed = min(committed, self._synced_ticket)
        async with self._progress:
            self._committed_ticket = max(self._committed_ticket, committed)
            self._progress.notify_all()

    def stop(self) -> None:
        """Refuse new entries; ``run`` returns once the queue is written."""
        self._stopping = True
        self._wakeup.set()

    def forget(self, document: str) -> None:
        """Drop per-document bookkeeping of an unloaded document with nothing pending."""
        if not self.document_pending(document):
            self._last_ticket.pop(document, None)
            self.last_persisted.pop(document, None)
