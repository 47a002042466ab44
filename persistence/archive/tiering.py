"""TieringStore: cold documents live in the archive, not the database, and come back on use.

``tier_out_cold`` moves documents untouched for a while out of the database: the document
is archived, its archive is read back and checked equal to its rows, and only then are the
rows removed (one transaction that also checks no update arrived meanwhile) and the
document recorded as tiered. Listings keep showing it. Any call that reads or writes one
document (load, history, versions, appends, data keys, export) first imports it back from
the archive, so hubs, the HTTP API and the search index see no difference except the first
read's latency.

It sits below the encryption layer: what moves is the rows as stored (ciphertext when
encrypted, with the wrapped data key). Tiering state is read at ``open`` and after each
tier-out; a hub node that tiers out a document it does not hold loaded (by idle time far
longer than the idle unload) is the one supported pattern with several nodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence

from persistence.archive.archiver import Archiver
from persistence.base import (
    ActivityEntry,
    CompactionResult,
    CorruptDocument,
    DeletedDocument,
    DocumentExport,
    DocumentInfo,
    LogEntry,
    LoggedUpdate,
    MergeFunction,
    Store,
    StoredDocument,
    TieredDocument,
    VersionInfo,
    WrappedDataKey,
)
from persistence.layer import StoreLayer

logger = logging.getLogger(__name__)


class TieringStore(StoreLayer):
    def __init__(self, inner: Store, archiver: Archiver) -> None:
        self.inner = inner
        self.archiver = archiver
        self._tiered: dict[str, TieredDocument] = {}
        self._warming: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"TieringStore({self.inner!r}, {self.archiver.objects.describe()})"

    async def open(self) -> None:
        await self.inner.open()
        self._tiered = {t.name: t for t in await self.inner.tiered_documents()}

    # -- tiering ----------------------------------------------------------------------

    def is_tiered(self, document: str) -> bool:
        return document in self._tiered

    async def _warm(self, document: str) -> None:
        """Bring a tiered document back into the database (once, however many ask at once)."""
        if document not in self._tiered:
            return
        lock = self._warming.setdefault(document, asyncio.Lock())
        async with lock:
            if document not in self._tiered:
                return
            started = time.perf_counter()
            manifest = await self.archiver.manifest(document)
            if manifest is None:
                raise CorruptDocument(f"{document!r} is tiered out but its archive has no manifest")
            await self.inner.import_document(await self.archiver.read_export(manifest))
            await self.inner.untier(document)
            del self._tiered[document]
            logger.info(
                "document %r back from the archive in %.0f ms",
                document,
                (time.perf_counter() - started) * 1000,
            )
        self._warming.pop(document, None)

    async def tier_out_cold(self, idle_before: float, keep: Collection[str] = ()) -> list[str]:
        """Tier out every document whose newest update is older than ``idle_before`` (unix
        seconds), except those in ``keep`` (loaded here). Returns the names tiered out."""
        moved = []
        for info in await self.inner.list_documents():
            if info.updated_at >= idle_before or info.name in keep:
                continue
            await self.archiver.archive_document(info.name)
            manifest = await self.archiver.manifest(info.name)
            current = await self.inner.export_document(info.name)
            if manifest is None or await self.archiver.read_export(manifest) != current:
                continue  # changed since (or the archive differs): not cold after all
            tiered = TieredDocument(info.name, current.last_seq, info.updated_at, time.time())
            if await self.inner.tier_out(tiered):
                self._tiered[info.name] = tiered
                moved.append(info.name)
        return moved

    async def tier_out(self, tiered: TieredDocument) -> bool:
        done = await self.inner.tier_out(tiered)
        if done:
            self._tiered[tiered.name] = tiered
        return done

    async def untier(self, document: str) -> None:
        await self.inner.untier(document)
        self._tiered.pop(document, None)

    # -- one document: bring it back first --------------------------------------------------

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        for document in {entry.document for entry in entries}:
            await self._warm(document)
        return await self.inner.append(entries)

    async def load(self, document: str) -> StoredDocument:
        await self._warm(document)
        return await self.inner.load(document)

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        if document in self._tiered:
            return None  # nothing to compact while it is in the archive
        return await self.inner.compact(document, merge, upto)

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        await self._warm(document)
        return await self.inner.history(document, limit)

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        await self._warm(document)
        return await self.inner.read_version(document, seq)

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        await self._warm(document)
        return await self.inner.activity(document, limit)

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        await self._warm(document)
        return await self.inner.read_log(document, after_seq, limit)

    async def data_key(self, document: str) -> WrappedDataKey | None:
        await self._warm(document)
        return await self.inner.data_key(document)

    async def add_data_key(self, key: WrappedDataKey) -> WrappedDataKey:
        await self._warm(key.document)
        return await self.inner.add_data_key(key)

    async def mark_deleted(self, deleted: DeletedDocument) -> bool:
        await self._warm(deleted.name)
        return await self.inner.mark_deleted(deleted)

    async def export_document(self, document: str) -> DocumentExport:
        await self._warm(document)
        return await self.inner.export_document(document)

    async def erase(self, document: str) -> int:
        self._tiered.pop(document, None)  # the archive's copy goes with the erase too
        return await self.inner.erase(document)

    async def prune_checkpoints(self, document: str, before: float) -> int:
        if document in self._tiered:
            return 0
        return await self.inner.prune_checkpoints(document, before)

    # -- the whole store ----------------------------------------------------------------

    async def list_documents(self) -> list[DocumentInfo]:
        listed = await self.inner.list_documents()
        names = {info.name for info in listed}
        cold = [
            DocumentInfo(t.name, t.last_seq, t.updated_at, 0)
            for t in self._tiered.values()
            if t.name not in names
        ]
        return sorted([*listed, *cold], key=lambda info: info.name)
