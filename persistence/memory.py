"""An in-memory Store: the reference semantics of the port, for fast tests and `--store memory`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

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
    ExportedCheckpoint,
    ExportedUpdate,
    LogEntry,
    LoggedUpdate,
    MergeFunction,
    PendingDocument,
    Revocation,
    StoredDocument,
    TieredDocument,
    UnknownVersion,
    VersionInfo,
    WrappedDataKey,
)


@dataclass(slots=True)
class _Row:
    seq: int
    entry: LogEntry
    compacted: bool = False
    imported_bytes: int | None = None  # size of a compacted row imported without its payload

    @property
    def update_bytes(self) -> int:
        return self.imported_bytes if self.imported_bytes is not None else len(self.entry.update)


@dataclass(slots=True)
class _Checkpoint:
    seq: int
    timestamp: float
    snapshot: bytes
    merged: int = 0
    actors: tuple[str, ...] = ()


@dataclass(slots=True)
class _Document:
    rows: list[_Row] = field(default_factory=list)
    checkpoints: list[_Checkpoint] = field(default_factory=list)
    compacting: bool = False


class MemoryStore:
    def __init__(self) -> None:
        self._documents: dict[str, _Document] = {}
        self._seq = 0
        self._audit: list[AuditEvent] = []
        self._revocations: dict[str, Revocation] = {}
        self._cursors: dict[tuple[str, str], int] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._deliveries: list[DeliveryRecord] = []
        self._dead_letters: dict[int, DeadLetter] = {}
        self._dead_letter_seq = 0
        self._data_keys: dict[str, WrappedDataKey] = {}
        self._deleted: dict[str, DeletedDocument] = {}
        self._tiered: dict[str, TieredDocument] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        seqs = []
        for entry in entries:
            self._seq += 1
            self._documents.setdefault(entry.document, _Document()).rows.append(_Row(self._seq, entry))
            seqs.append(self._seq)
        return seqs

    async def load(self, document: str) -> StoredDocument:
        return self._parts(document, None)

    def _parts(self, document: str, upto: int | None) -> StoredDocument:
        doc = self._documents.get(document)
        if doc is None:
            return StoredDocument(None, [], 0)
        limit = upto if upto is not None else self._seq
        checkpoint = None
        for candidate in doc.checkpoints:
            if candidate.seq <= limit:
                checkpoint = candidate
        base = checkpoint.seq if checkpoint else 0
        tail_rows = [row for row in doc.rows if base < row.seq <= limit]
        if any(row.compacted for row in tail_rows):
            raise UnknownVersion(f"version {upto} of {document!r} was compacted away")
        last = max([base, *(row.seq for row in tail_rows)])
        return StoredDocument(
            checkpoint.snapshot if checkpoint else None, [r.entry.update for r in tail_rows], last
        )

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        doc = self._documents.get(document)
        if doc is None or doc.compacting:
            return None
        doc.compacting = True
        try:
            try:
                parts = self._parts(document, upto)
            except UnknownVersion:  # `upto` is inside an already compacted range: nothing to do
                return None
            if not parts.tail:
                return None
            inputs = parts.parts
            merged = await asyncio.to_thread(merge, inputs)
            covered = parts.last_seq
            timestamp = max(row.entry.timestamp for row in doc.rows if row.seq <= covered)
            previous = doc.checkpoints[-1].seq if doc.checkpoints else 0
            actors = tuple(
                sorted({r.entry.actor for r in doc.rows if previous < r.seq <= covered and r.entry.actor})
            )
            doc.checkpoints.append(_Checkpoint(covered, timestamp, merged, len(parts.tail), actors))
            for row in doc.rows:
                if row.seq <= covered:
                    row.compacted = True
            return CompactionResult(document, covered, len(parts.tail), len(merged))
        finally:
            doc.compacting = False

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        doc = self._documents.get(document)
        if doc is None:
            return []
        versions: dict[int, VersionInfo] = {}
        for row in doc.rows:
            if not row.compacted:
                actors = [row.entry.actor] if row.entry.actor else []
                versions[row.seq] = VersionInfo(
                    row.seq, row.entry.timestamp, actors, row.update_bytes, "update"
                )
        previous = 0
        for checkpoint in doc.checkpoints:
            covered = [r for r in doc.rows if previous < r.seq <= checkpoint.seq]
            actors = sorted({r.entry.actor for r in covered if r.entry.actor})
            versions[checkpoint.seq] = VersionInfo(
                checkpoint.seq, checkpoint.timestamp, actors, len(checkpoint.snapshot), "checkpoint"
            )
            previous = checkpoint.seq
        return [versions[seq] for seq in sorted(versions, reverse=True)][:limit]

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        doc = self._documents.get(document)
        if doc is None or not any(row.seq == seq for row in doc.rows):
            raise UnknownVersion(f"{document!r} has no version {seq}")
        return self._parts(document, seq)

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        doc = self._documents.get(document)
        if doc is None:
            return []
        rows = sorted(doc.rows, key=lambda row: row.seq, reverse=True)[:limit]
        return [
            ActivityEntry(r.seq, r.entry.timestamp, r.entry.actor, r.entry.origin_node, r.update_bytes)
            for r in rows
        ]

    async def list_documents(self) -> list[DocumentInfo]:
        infos = []
        for name, doc in sorted(self._documents.items()):
            if not doc.rows or name in self._deleted:
                continue
            last = doc.rows[-1]
            tail = sum(1 for row in doc.rows if not row.compacted)
            infos.append(DocumentInfo(name, last.seq, last.entry.timestamp, tail))
        return infos

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        self._audit.extend(events)

    async def audit(
        self, *, document: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        matching = [
            event
            for event in reversed(self._audit)
            if (document is None or event.document == document)
            and (subject is None or event.subject == subject)
        ]
        return matching[:limit]

    async def add_revocation(self, revocation: Revocation) -> None:
        self._revocations[revocation.token_id] = _later(
            self._revocations.get(revocation.token_id), revocation
        )
        for token_id in [t for t, r in self._revocations.items() if not _in_force(r, revocation.revoked_at)]:
            del self._revocations[token_id]

    async def revocations(self, now: float) -> list[Revocation]:
        return [r for r in self._revocations.values() if _in_force(r, now)]

    # -- change events ----------------------------------------------------------------------

    async def pending_events(self, sink: str, after_seq: int = 0) -> list[PendingDocument]:
        pending = []
        for name, doc in sorted(self._documents.items()):
            cursor = self._cursors.get((sink, name), 0)
            rows = [row for row in doc.rows if row.seq > max(cursor, after_seq)]
            if rows:
                pending.append(
                    PendingDocument(name, cursor, rows[-1].seq, len(rows), rows[0].entry.timestamp)
                )
        return pending

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        doc = self._documents.get(document)
        if doc is None:
            return []
        return [
            LoggedUpdate(
                row.seq,
                None if row.compacted else row.entry.update,
                row.entry.actor,
                row.entry.origin_node,
                row.entry.timestamp,
            )
            for row in doc.rows
            if row.seq > after_seq
        ][:limit]

    async def event_cursor(self, sink: str, document: str) -> int:
        return self._cursors.get((sink, document), 0)

    async def advance_event_cursors(self, sink: str, positions: Mapping[str, int]) -> None:
        for document, seq in positions.items():
            key = (sink, document)
            self._cursors[key] = max(seq, self._cursors.get(key, 0))

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = time.time()
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._leases[name] = (holder, now + ttl_seconds)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        if self._leases.get(name, ("", 0.0))[0] == holder:
            del self._leases[name]

    async def read_audit(self, after_id: int, limit: int) -> list[AuditRecord]:
        return [AuditRecord(i + 1, event) for i, event in enumerate(self._audit) if i + 1 > after_id][:limit]

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        self._deliveries.extend(records)

    async def deliveries(self, sink: str, limit: int = 100) -> list[DeliveryRecord]:
        return [record for record in reversed(self._deliveries) if record.sink == sink][:limit]

    async def add_dead_letter(self, letter: DeadLetter) -> int:
        self._dead_letter_seq += 1
        self._dead_letters[self._dead_letter_seq] = replace(letter, id=self._dead_letter_seq)
        return self._dead_letter_seq

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        letters = [self._dead_letters[key] for key in sorted(self._dead_letters, reverse=True)]
        return [letter for letter in letters if sink is None or letter.sink == sink][:limit]

    async def remove_dead_letter(self, letter_id: int) -> DeadLetter | None:
        return self._dead_letters.pop(letter_id, None)

    # -- data lifecycle ---------------------------------------------------------------

    async def data_key(self, document: str) -> WrappedDataKey | None:
        return self._data_keys.get(document)

    async def add_data_key(self, key: WrappedDataKey) -> WrappedDataKey:
        return self._data_keys.setdefault(key.document, key)

    async def data_keys(self) -> list[WrappedDataKey]:
        return [self._data_keys[name] for name in sorted(self._data_keys)]

    async def rewrap_data_key(self, old: WrappedDataKey, new: WrappedDataKey) -> bool:
        if self._data_keys.get(old.document) != old:
            return False
        self._data_keys[old.document] = new
        return True

    async def mark_deleted(self, deleted: DeletedDocument) -> bool:
        doc = self._documents.get(deleted.name)
        if doc is None or not doc.rows or deleted.name in self._deleted:
            return False
        self._deleted[deleted.name] = deleted
        return True

    async def undelete(self, document: str) -> bool:
        return self._deleted.pop(document, None) is not None

    async def deleted_documents(self) -> list[DeletedDocument]:
        return [self._deleted[name] for name in sorted(self._deleted)]

    async def erase(self, document: str) -> int:
        doc = self._documents.pop(document, None)
        removed = len(doc.rows) + len(doc.checkpoints) if doc else 0
        removed += int(self._data_keys.pop(document, None) is not None)
        removed += int(self._deleted.pop(document, None) is not None)
        removed += int(self._tiered.pop(document, None) is not None)
        return removed

    async def prune_checkpoints(self, document: str, before: float) -> int:
        doc = self._documents.get(document)
        if doc is None or len(doc.checkpoints) < 2:
            return 0
        newest = doc.checkpoints[-1]
        kept = [c for c in doc.checkpoints if c is newest or c.timestamp >= before]
        removed = len(doc.checkpoints) - len(kept)
        doc.checkpoints = kept
        return removed

    async def tier_out(self, tiered: TieredDocument) -> bool:
        doc = self._documents.get(tiered.name)
        if doc is None or not doc.rows or doc.rows[-1].seq != tiered.last_seq or tiered.name in self._tiered:
            return False
        del self._documents[tiered.name]
        self._data_keys.pop(tiered.name, None)
        self._tiered[tiered.name] = tiered
        return True

    async def untier(self, document: str) -> None:
        self._tiered.pop(document, None)

    async def tiered_documents(self) -> list[TieredDocument]:
        return [self._tiered[name] for name in sorted(self._tiered)]

    async def export_document(self, document: str) -> DocumentExport:
        doc = self._documents.get(document) or _Document()
        updates = [
            ExportedUpdate(
                r.seq,
                None if r.compacted else r.entry.update,
                r.update_bytes,
                r.entry.actor,
                r.entry.origin_node,
                r.entry.timestamp,
            )
            for r in doc.rows
        ]
        checkpoints = [
            ExportedCheckpoint(c.seq, c.snapshot, c.timestamp, c.merged, list(c.actors))
            for c in doc.checkpoints
        ]
        return DocumentExport(document, updates, checkpoints, self._data_keys.get(document))

    async def import_document(self, export: DocumentExport) -> None:
        if self._documents.get(export.document, _Document()).rows:
            raise ValueError(f"document {export.document!r} already has rows")
        doc = _Document()
        for u in export.updates:
            # A compacted row keeps its metadata; its payload is gone (a checkpoint covers it).
            entry = LogEntry(export.document, u.payload or b"", u.actor, u.origin_node, u.created_at)
            doc.rows.append(_Row(u.seq, entry, compacted=u.payload is None, imported_bytes=u.update_bytes))
        doc.checkpoints = [
            _Checkpoint(c.seq, c.created_at, c.snapshot, c.merged, tuple(c.actors))
            for c in export.checkpoints
        ]
        self._documents[export.document] = doc
        self._seq = max(self._seq, export.last_seq)
        if export.data_key is not None:
            self._data_keys[export.document] = export.data_key


def _in_force(revocation: Revocation, now: float) -> bool:
    return revocation.expires_at is None or revocation.expires_at > now


def _later(old: Revocation | None, new: Revocation) -> Revocation:
    """Two revocations of one token: keep it as long as either asks (unknown expiry: for good)."""
    if old is None or new.expires_at is None:
        return new
    if old.expires_at is None or old.expires_at > new.expires_at:
        return old
    return new
