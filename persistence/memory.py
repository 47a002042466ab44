"""An in-memory Store: the reference semantics of the port, for fast tests and `--store memory`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from persistence.base import (
    ActivityEntry,
    AuditEvent,
    CompactionResult,
    DocumentInfo,
    LogEntry,
    MergeFunction,
    Revocation,
    StoredDocument,
    UnknownVersion,
    VersionInfo,
)


@dataclass(slots=True)
class _Row:
    seq: int
    entry: LogEntry
    compacted: bool = False


@dataclass(slots=True)
class _Checkpoint:
    seq: int
    timestamp: float
    snapshot: bytes


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

    async def compact(self, document: str, merge: MergeFunction) -> CompactionResult | None:
        doc = self._documents.get(document)
        if doc is None or doc.compacting:
            return None
        doc.compacting = True
        try:
            parts = self._parts(document, None)
            if not parts.tail:
                return None
            inputs = parts.parts
            merged = await asyncio.to_thread(merge, inputs)
            covered = parts.last_seq
            timestamp = max(row.entry.timestamp for row in doc.rows if row.seq <= covered)
            doc.checkpoints.append(_Checkpoint(covered, timestamp, merged))
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
                    row.seq, row.entry.timestamp, actors, len(row.entry.update), "update"
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
            ActivityEntry(r.seq, r.entry.timestamp, r.entry.actor, r.entry.origin_node, len(r.entry.update))
            for r in rows
        ]

    async def list_documents(self) -> list[DocumentInfo]:
        infos = []
        for name, doc in sorted(self._documents.items()):
            if not doc.rows:
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


def _in_force(revocation: Revocation, now: float) -> bool:
    return revocation.expires_at is None or revocation.expires_at > now


def _later(old: Revocation | None, new: Revocation) -> Revocation:
    """Two revocations of one token: keep it as long as either asks (unknown expiry: for good)."""
    if old is None or new.expires_at is None:
        return new
    if old.expires_at is None or old.expires_at > new.expires_at:
        return old
    return new
