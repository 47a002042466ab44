"""Compaction scheduling: when a document's stored log is merged into a snapshot.

A document is compacted once `compact_after_updates` entries or `compact_after_bytes` bytes
were stored since its last compaction (counted from the group-commit writer's commits), and
once more when it is unloaded. At most one compaction per document runs here at a time (the
store also guards against other processes). Counters exist only for documents with stored,
uncompacted entries and are dropped after a successful compaction or an unload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import crdt_core
from collab_server.metrics import HubMetrics
from persistence.base import Store, StoreError
from persistence.group_commit import GroupCommitWriter

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    entries: int = 0
    size: int = 0


class CompactionScheduler:
    def __init__(
        self,
        store: Store,
        writer: GroupCommitWriter,
        metrics: HubMetrics,
        *,
        after_updates: int,
        after_bytes: int,
    ) -> None:
        self._store = store
        self._writer = writer
        self._metrics = metrics
        self._after_updates = after_updates
        self._after_bytes = after_bytes
        self._pending: dict[str, _Pending] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        # Set by the change-event publisher: the newest seq compaction may cover per document.
        self.limit: Callable[[str], Awaitable[int | None]] | None = None
        # Set by the hub to the lifecycle's check: deleted documents are never compacted.
        self.is_deleted: Callable[[str], bool] = lambda _name: False

    def start(self, tasks: asyncio.TaskGroup) -> None:
        """Compactions run as tasks of ``tasks`` (the hub's group) until ``stop``."""
        self._tasks = tasks

    @property
    def running(self) -> int:
        return len(self._running)

    def pending(self, document: str) -> int:
        counts = self._pending.get(document)
        return counts.entries if counts else 0

    def loaded(self, document: str, entries: int, size: int) -> None:
        """A document was loaded with ``entries`` uncompacted log entries."""
        if entries:
            self._pending[document] = _Pending(entries, size)

    def stored(self, document: str, entries: int, size: int) -> None:
        """The writer committed ``entries`` (``size`` bytes) of ``document``."""
        counts = self._pending.setdefault(document, _Pending())
        counts.entries += entries
        counts.size += size
        if counts.entries >= self._after_updates or counts.size >= self._after_bytes:
            self._start(document, forget_after=False)

    def unloaded(self, document: str) -> None:
        """A document left memory: compact what it stored, then forget its counters."""
        if self.pending(document):
            self._start(document, forget_after=True)
        else:
            self._pending.pop(document, None)

    def forget(self, document: str) -> None:
        self._pending.pop(document, None)

    def _start(self, document: str, *, forget_after: bool) -> None:
        if document in self._running or self._tasks is None or self.is_deleted(document):
            if forget_after and document not in self._running:
                self._pending.pop(document, None)
            return
        task = self._tasks.create_task(self._compact(document, forget_after), name=f"compact:{document}")
        self._running[document] = task

    async def _compact(self, document: str, forget_after: bool) -> None:
        try:
            await self._writer.wait_document(document)
            upto = await self.limit(document) if self.limit is not None else None
            result = await self._store.compact(document, crdt_core.merge_updates, upto)
            if result is not None:
                self._pending.pop(document, None)
                self._metrics.compactions.inc()
                logger.info(
                    "compacted %r: %d entries into %d bytes (up to seq %d)",
                    document,
                    result.merged_entries,
                    result.snapshot_bytes,
                    result.covered_seq,
                )
        except (StoreError, OSError, ValueError) as exc:
            logger.warning("compaction of %r failed, will retry later: %s", document, exc)
        finally:
            self._running.pop(document, None)
            if forget_after:
                self._pending.pop(document, None)

    async def stop(self) -> None:
        """Start no more compactions; wait for the running ones (the caller bounds the wait)."""
        self._tasks = None
        try:
            if self._running:
                await asyncio.wait(list(self._running.values()))
        finally:
            for task in self._running.values():
                task.cancel()
