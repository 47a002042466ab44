"""StoreLayer: a Store that hands every call to the store inside it.

Layers that change a few calls (encryption at rest, tiering of cold documents) subclass it
and override those; everything else reaches the adapter unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from persistence.base import (
    ActivityEntry,
    AuditEvent,
    AuditRecord,
    CompactionResult,
    DeadLetter,
    DeletedDocument,
    DeliveryRecord,
    DocumentExport,
    DocumentInfo,
    LogEntry,
    LoggedUpdate,
    MergeFunction,
    PendingDocument,
    Revocation,
    Store,
    StoredDocument,
    TieredDocument,
    VersionInfo,
    WrappedDataKey,
)


class StoreLayer:
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        return await self.inner.append(entries)

    async def load(self, document: str) -> StoredDocument:
        return await self.inner.load(document)

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        return await self.inner.compact(document, merge, upto)

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        return await self.inner.history(document, limit)

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        return await self.inner.read_version(document, seq)

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        return await self.inner.activity(document, limit)

    async def list_documents(self) -> list[DocumentInfo]:
        return await self.inner.list_documents()

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        await self.inner.append_audit(events)

    async def audit(
        self, *, document: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        return await self.inner.audit(document=document, subject=subject, limit=limit)

    async def add_revocation(self, revocation: Revocation) -> None:
        await self.inner.add_revocation(revocation)

    async def revocations(self, now: float) -> list[Revocation]:
        return await self.inner.revocations(now)

    async def pending_events(self, sink: str, after_seq: int = 0) -> list[PendingDocument]:
        return await self.inner.pending_events(sink, after_seq)

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        return await self.inner.read_log(document, after_seq, limit)

    async def event_cursor(self, sink: str, document: str) -> int:
        return await self.inner.event_cursor(sink, document)

    async def advance_event_cursors(self, sink: str, positions: Mapping[str, int]) -> None:
        await self.inner.advance_event_cursors(sink, positions)

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        return await self.inner.acquire_lease(name, holder, ttl_seconds)

    async def release_lease(self, name: str, holder: str) -> None:
        await self.inner.release_lease(name, holder)

    async def read_audit(self, after_id: int, limit: int) -> list[AuditRecord]:
        return await self.inner.read_audit(after_id, limit)

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        await self.inner.record_deliveries(records)

    async def deliveries(self, sink: str, limit: int = 100) -> list[DeliveryRecord]:
        return await self.inner.deliveries(sink, limit)

    async def add_dead_letter(self, letter: DeadLetter) -> int:
        return await self.inner.add_dead_letter(letter)

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self.inner.dead_letters(sink, limit)

    async def remove_dead_letter(self, letter_id: int) -> DeadLetter | None:
        return await self.inner.remove_dead_letter(letter_id)

    async def data_key(self, document: str) -> WrappedDataKey | None:
        return await self.inner.data_key(document)

    async def add_data_key(self, key: WrappedDataKey) -> WrappedDataKey:
        return await self.inner.add_data_key(key)

    async def data_keys(self) -> list[WrappedDataKey]:
        return await self.inner.data_keys()

    async def rewrap_data_key(self, old: WrappedDataKey, new: WrappedDataKey) -> bool:
        return await self.inner.rewrap_data_key(old, new)

    async def mark_deleted(self, deleted: DeletedDocument) -> bool:
        return await self.inner.mark_deleted(deleted)

    async def undelete(self, document: str) -> bool:
        return await self.inner.undelete(document)

    async def deleted_documents(self) -> list[DeletedDocument]:
        return await self.inner.deleted_documents()

    async def erase(self, document: str) -> int:
        return await self.inner.erase(document)

    async def prune_checkpoints(self, document: str, before: float) -> int:
        return await self.inner.prune_checkpoints(document, before)

    async def tier_out(self, tiered: TieredDocument) -> bool:
        return await self.inner.tier_out(tiered)

    async def untier(self, document: str) -> None:
        await self.inner.untier(document)

    async def tiered_documents(self) -> list[TieredDocument]:
        return await self.inner.tiered_documents()

    async def export_document(self, document: str) -> DocumentExport:
        return await self.inner.export_document(document)

    async def import_document(self, export: DocumentExport) -> None:
        await self.inner.import_document(export)
