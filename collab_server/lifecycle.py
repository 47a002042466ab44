"""Deleting documents: soft delete (hidden, restorable within a grace period) and hard erase.

Soft delete marks the document in the store: it leaves listings, every open connection is
closed with 4410 (document deleted), new opens get 4410 and HTTP reads 404
``document_deleted``, and its search chunks go (the indexer drops documents that leave
the listing). ``undelete`` within the grace period brings it back as it was. After the
grace period the purge erases it.

Hard erase removes everything kept about the content: the update log, checkpoints,
archive objects, search-index entries and the data key (crypto-shredding: with encryption
on, any copy of the ciphertext left in database pages, WAL segments or backups becomes
unreadable). What survives is the audit log, which records who deleted and erased what
and how much was removed, never the content.

Every node refreshes its view of deleted documents from the store every
``REFRESH_SECONDS``, so a document deleted through another node is closed here too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from persistence.base import DeletedDocument, Store, StoreError

if TYPE_CHECKING:
    from collab_server.ports import Search

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0  # how stale another node's view of deletions may be
PRUNE_EVERY_SECONDS = 3600.0  # checkpoint pruning runs this often (more often for short retentions)


class Evictions(Protocol):
    async def evict(self, name: str) -> None:
        """The document leaves this node (its sockets are closed with 4410)."""


class CommitWaits(Protocol):
    async def wait_document(self, document: str) -> None:
        """Until every change of ``document`` accepted so far is stored."""


class AuditTrail(Protocol):
    def record(self, action: str, subject: str | None, document: str | None, detail: str = "") -> None: ...


class LifecycleHub(Protocol):
    """What the lifecycle uses of the hub (the hub itself satisfies it)."""

    @property
    def store(self) -> Store: ...

    @property
    def writer(self) -> CommitWaits: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def documents(self) -> Evictions: ...


class LifecycleEvents(Protocol):
    """Where deletions are announced beyond this hub (an event stream publishes
    ``document.deleted``; the default announces nothing)."""

    def document_deleted(self, document: str, *, erased: bool, by: str | None) -> None: ...


class NoEvents:
    def document_deleted(self, document: str, *, erased: bool, by: str | None) -> None:
        return None


# Removes a document's objects from the archive; returns how many were removed.
ArchiveEraser = Callable[[str], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Erasure:
    document: str
    rows: int  # database rows (log, checkpoints, data key, deletion mark)
    search_chunks: int
    archive_objects: int


class NotDeleted(Exception):
    """Undelete of a document that is not soft-deleted."""


class UnknownDocument(Exception):
    """Delete of a document that has no stored rows (or is deleted already)."""


class DocumentLifecycle:
    def __init__(
        self,
        hub: LifecycleHub,
        grace_seconds: float,
        events: LifecycleEvents | None = None,
        *,
        checkpoint_retention_seconds: float = 0.0,
    ) -> None:
        self._hub = hub
        self.grace_seconds = grace_seconds
        self.checkpoint_retention = checkpoint_retention_seconds
        self.pruned_checkpoints = 0
        self.events: LifecycleEvents = events or NoEvents()
        self.archive_eraser: ArchiveEraser | None = None  # set when archiving is configured
        self._deleted: dict[str, DeletedDocument] = {}
        self._erasing: set[str] = set()  # a purge must not erase what an admin is erasing
        self.search: Search | None = None  # set by the app once the search service is open

    def is_deleted(self, document: str) -> bool:
        return document in self._deleted

    def deleted(self) -> list[DeletedDocument]:
        return [self._deleted[name] for name in sorted(self._deleted)]

    async def refresh(self) -> None:
        """Read the deletion marks; evict documents deleted elsewhere since the last look."""
        current = {d.name: d for d in await self._hub.store.deleted_documents()}
        newly = current.keys() - self._deleted.keys()
        self._deleted = current
        for name in sorted(newly):
            await self._hub.documents.evict(name)

    async def run(self) -> None:
        """Refresh, purge and prune forever (until cancelled); a store outage is retried."""
        prune_every = min(PRUNE_EVERY_SECONDS, max(REFRESH_SECONDS, self.checkpoint_retention / 4))
        next_prune = time.monotonic() + prune_every
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
                await self.purge_expired()
                if self.checkpoint_retention > 0 and time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + prune_every
                    await self.prune_checkpoints()
            except (StoreError, OSError) as exc:
                logger.warning("document lifecycle: store unavailable, retrying: %s", exc)

    async def delete(self, document: str, by: str | None) -> DeletedDocument:
        now = time.time()
        await self._hub.writer.wait_document(document)  # what was typed before the delete is kept
        mark = DeletedDocument(document, now, by, now + self.grace_seconds)
        if not await self._hub.store.mark_deleted(mark):
            raise UnknownDocument(f"{document!r} has no stored content or is deleted already")
        self._deleted[document] = mark
        await self._hub.documents.evict(document)
        self._hub.audit.record("delete", by, document, f"restorable until {mark.purge_after:.0f}")
        self.events.document_deleted(document, erased=False, by=by)
        logger.info("document %r deleted by %s (restorable for %.0fs)", document, by, self.grace_seconds)
        return mark

    async def undelete(self, document: str, by: str | None) -> None:
        if not await self._hub.store.undelete(document):
            raise NotDeleted(f"{document!r} is not deleted")
        self._deleted.pop(document, None)
        self._hub.audit.record("undelete", by, document, "")
        logger.info("document %r restored by %s", document, by)

    async def erase(self, document: str, by: str | None, *, reason: str = "erase") -> Erasure:
        # Mark first, so no node loads it again while its parts are being removed.
        now = time.time()
        mark = DeletedDocument(document, now, by, now + self.grace_seconds)
        await self._hub.store.mark_deleted(mark)
        self._deleted.setdefault(document, mark)
        self._erasing.add(document)
        try:
            return await self._erase(document, by, reason)
        finally:
            self._erasing.discard(document)

    async def _erase(self, document: str, by: str | None, reason: str) -> Erasure:
        await self._hub.documents.evict(document)
        archived = await self.archive_eraser(document) if self.archive_eraser is not None else 0
        index = self.search.index if self.search is not None else None
        chunks = await index.forget(document) if index is not None else 0
        rows = await self._hub.store.erase(document)
        self._deleted.pop(document, None)
        erasure = Erasure(document, rows, chunks, archived)
        self._hub.audit.record(
            reason, by, document, f"removed {rows} rows, {chunks} search chunks, {archived} archive objects"
        )
        self.events.document_deleted(document, erased=True, by=by)
        logger.info("document %r erased by %s: %s", document, by, erasure)
        return erasure

    async def prune_checkpoints(self) -> int:
        """Apply the checkpoint retention policy to every document."""
        before = time.time() - self.checkpoint_retention
        pruned = 0
        for info in await self._hub.store.list_documents():
            pruned += await self._hub.store.prune_checkpoints(info.name, before)
        if pruned:
            logger.info("pruned %d checkpoints older than %.0fs", pruned, self.checkpoint_retention)
        self.pruned_checkpoints += pruned
        return pruned

    async def purge_expired(self) -> list[str]:
        """Erase soft-deleted documents whose grace period is over."""
        now = time.time()
        due = [d.name for d in self._deleted.values() if d.purge_after <= now and d.name not in self._erasing]
        for name in due:
            await self.erase(name, None, reason="purge")
        return due
