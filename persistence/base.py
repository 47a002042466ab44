"""The Store port: an append-only update log per document plus compacted snapshots.

Every adapter (memory, SQLite, PostgreSQL) implements ``Store`` and passes the one
contract suite in ``tests/test_store_contract.py``.

Sequence numbers (``seq``) are drawn from one counter per store and never reused.
Within one document they increase in commit order (a later commit of a document never
gets a lower seq); across documents they need not (PostgreSQL allocates seqs before
commit, and concurrent transactions of different documents can commit out of order),
so do not tail the whole log by seq. A document's state at ``seq`` is its snapshot
covering ``<= seq`` plus the log entries after the snapshot up to ``seq``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class StoreError(Exception):
    """Base class of every error a store raises."""


class StoreUnavailable(StoreError):
    """The backing database cannot be reached (retry later)."""


class CorruptDocument(StoreError):
    """A stored row of this document cannot be decoded; the document must not be served or saved."""


class UnknownVersion(StoreError):
    """The requested version does not exist (or its log entries were compacted away)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One update as the hub received it, with who sent it and from which hub node."""

    document: str
    update: bytes
    actor: str | None
    origin_node: str
    timestamp: float  # unix seconds


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What a store returns to rebuild a document: a snapshot and the log tail after it."""

    snapshot: bytes | None
    tail: Sequence[bytes]
    last_seq: int  # highest seq covered (snapshot or tail); 0 for a new document

    @property
    def is_empty(self) -> bool:
        return self.snapshot is None and not self.tail

    @property
    def parts(self) -> list[bytes]:
        """The updates that rebuild the document, in order: the snapshot (if any), then the tail.

        The one place "snapshot + tail" is assembled; every reader and compaction uses it.
        """
        return ([self.snapshot] if self.snapshot is not None else []) + list(self.tail)

    @property
    def size_bytes(self) -> int:
        """The stored bytes: the snapshot and the tail."""
        return len(self.snapshot or b"") + sum(len(update) for update in self.tail)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A readable point in a document's history (a checkpoint or a log entry)."""

    seq: int
    timestamp: float
    actors: Sequence[str]
    update_bytes: int
    kind: str  # "checkpoint" (snapshot written by compaction) or "update"


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    seq: int
    timestamp: float
    actor: str | None
    origin_node: str
    update_bytes: int


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    name: str
    last_seq: int
    updated_at: float
    log_entries: int  # entries in the tail (not yet compacted)


@dataclass(frozen=True, slots=True)
class CompactionResult:
    document: str
    covered_seq: int
    merged_entries: int
    snapshot_bytes: int
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what: connect, disconnect, denied, revoke, restore, ... (never a token)."""

    at: float
    action: str
    subject: str | None
    document: str | None
    node: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LoggedUpdate:
    """One row of the update log as an event sink reads it; ``update`` is None once compacted."""

    seq: int
    update: bytes | None
    actor: str | None
    origin_node: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class PendingDocument:
    """A document with log rows a sink has not published yet (seq > ``cursor``)."""

    document: str
    cursor: int  # the sink's cursor: every row with seq <= cursor is published
    last_seq: int
    pending: int  # unpublished rows (among those scanned)
    oldest_at: float  # timestamp of the oldest unpublished row


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit event with its position in the audit log (for the event publisher's cursor)."""

    id: int
    event: AuditEvent


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery attempt of an event to a sink (a webhook endpoint)."""

    sink: str
    event_id: str
    event_type: str
    attempt: int
    at: float
    ok: bool
    status: int | None  # HTTP status, None when no answer came
    error: str
    duration_ms: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a sink gave up on after its retries; kept until an admin removes it."""

    id: int
    sink: str
    event_id: str
    event_type: str
    document: str | None
    payload: str  # the JSON envelope
    error: str
    attempts: int
    at: float


@dataclass(frozen=True, slots=True)
class WrappedDataKey:
    """A document's data key, encrypted ("wrapped") by a master key; never stored in the clear.

    ``key_id`` names the data key inside every ciphertext it produced; ``master_key_id``
    names the master key that wrapped it (rotation re-wraps, the data key stays).
    """

    document: str
    key_id: str
    master_key_id: str
    wrapped: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class DeletedDocument:
    """A soft-deleted document: hidden and refused until restored or erased after ``purge_after``."""

    name: str
    deleted_at: float
    deleted_by: str | None
    purge_after: float


@dataclass(frozen=True, slots=True)
class TieredDocument:
    """A cold document whose rows were moved to the archive (persistence/archive/tiering.py)."""

    name: str
    last_seq: int
    updated_at: float
    tiered_at: float


@dataclass(frozen=True, slots=True)
class ExportedUpdate:
    """One update-log row as stored (payload None once a checkpoint covers it)."""

    seq: int
    payload: bytes | None
    update_bytes: int
    actor: str | None
    origin_node: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ExportedCheckpoint:
    seq: int
    snapshot: bytes
    created_at: float
    merged: int
    actors: Sequence[str]


@dataclass(frozen=True, slots=True)
class DocumentExport:
    """Every stored row of one document, exactly as stored (ciphertext when encrypted).

    What archives are made of, and what ``import_document`` writes back with the same seqs.
    """

    document: str
    updates: Sequence[ExportedUpdate]
    checkpoints: Sequence[ExportedCheckpoint]
    data_key: WrappedDataKey | None

    @property
    def last_seq(self) -> int:
        return max([0, *(u.seq for u in self.updates), *(c.seq for c in self.checkpoints)])


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked token id, kept until the token's own expiry (``None``: expiry unknown, kept)."""

    token_id: str
    expires_at: float | None
    revoked_at: float
    revoked_by: str | None = None


# Merges a snapshot (first, may be absent) and the tail into one encoded update.
# Runs in a worker thread: the native crate releases the GIL while merging.
MergeFunction = Callable[[Sequence[bytes]], bytes]


@runtime_checkable
class TwoStepStore(Protocol):
    """A store whose commit has two steps the group-commit writer can pipeline.

    ``append_unsynced`` commits in one transaction, visible to readers and safe from a crash
    of this process (SQLite: the WAL frames are in the OS); ``sync`` then makes everything
    written so far survive an OS crash or power loss (one fsync). ``append`` is both.
    """

    async def append_unsynced(self, entries: Sequence[LogEntry]) -> list[int]: ...

    async def sync(self) -> None: ...


class Store(Protocol):
    async def open(self) -> None:
        """Connect and run pending schema migrations; raise StoreUnavailable if unreachable."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the database does not answer."""

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        """Write all entries in ONE transaction (group commit); return their seqs in order."""

    async def load(self, document: str) -> StoredDocument:
        """Snapshot plus tail; raise CorruptDocument if a row cannot be read."""

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        """Merge snapshot + tail (entries with seq <= ``upto`` when given) into a new checkpoint
        snapshot, in one transaction. ``upto`` lets an event sink hold back what it has not
        published yet.

        At most one compaction of a document runs at a time across every process
        sharing the database; a concurrent call returns None without doing anything.
        Entries appended meanwhile are kept in the tail.
        """

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        """Readable versions, newest first."""

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        """The parts that rebuild the document as it was right after ``seq``."""

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        """Who changed the document and when, newest first (survives compaction)."""

    async def list_documents(self) -> list[DocumentInfo]:
        """Documents with stored rows, soft-deleted ones left out."""

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Write audit events in one transaction."""

    async def audit(
        self, *, document: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """Audit events, newest first, filtered by document and/or subject."""

    async def add_revocation(self, revocation: Revocation) -> None:
        """Record a revoked token id (idempotent: the later expiry wins); drop lapsed records."""

    async def revocations(self, now: float) -> list[Revocation]:
        """Revocations still in force at ``now`` (expiry unknown or later than ``now``)."""

    # -- change events: the outbox read by event sinks (Kafka, webhooks) -------------------

    async def pending_events(self, sink: str, after_seq: int = 0) -> list[PendingDocument]:
        """Documents with rows of seq > ``after_seq`` that ``sink`` has not published.

        ``after_seq`` only narrows the scan (a hint); 0 scans the whole log.
        """

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        """Log rows of ``document`` with seq > ``after_seq``, in seq order, at most ``limit``."""

    async def event_cursor(self, sink: str, document: str) -> int:
        """The newest seq of ``document`` that ``sink`` has published (0: none)."""

    async def advance_event_cursors(self, sink: str, positions: Mapping[str, int]) -> None:
        """Record in one transaction that ``sink`` published each document up to its seq
        (a cursor never moves backwards)."""

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holder's is live."""

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def read_audit(self, after_id: int, limit: int) -> list[AuditRecord]:
        """Audit events with id > ``after_id`` in id order."""

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None: ...

    async def deliveries(self, sink: str, limit: int = 100) -> list[DeliveryRecord]:
        """The delivery log of ``sink``, newest first."""

    async def add_dead_letter(self, letter: DeadLetter) -> int:
        """Store a dead letter (its ``id`` is ignored); return the id it got."""

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, newest first."""

    async def remove_dead_letter(self, letter_id: int) -> DeadLetter | None:
        """Remove and return a dead letter (None if there is no such id)."""

    # -- data lifecycle: data keys, deletion, export/import (persistence/lifecycle docs) --

    async def data_key(self, document: str) -> WrappedDataKey | None: ...

    async def add_data_key(self, key: WrappedDataKey) -> WrappedDataKey:
        """Store the document's first data key; if one exists already, return that one instead."""

    async def data_keys(self) -> list[WrappedDataKey]: ...

    async def rewrap_data_key(self, old: WrappedDataKey, new: WrappedDataKey) -> bool:
        """Replace ``old``'s wrapping by ``new``'s if it is still ``old`` (compare and set)."""

    async def mark_deleted(self, deleted: DeletedDocument) -> bool:
        """Soft-delete; False if the document has no rows or is deleted already."""

    async def undelete(self, document: str) -> bool:
        """Bring a soft-deleted document back; False if it was not deleted."""

    async def deleted_documents(self) -> list[DeletedDocument]: ...

    async def erase(self, document: str) -> int:
        """Remove every row of the document (log, checkpoints, data key, deletion mark) in one
        transaction, overwriting freed space where the database allows; the audit log stays.
        Returns the number of rows removed."""

    async def prune_checkpoints(self, document: str, before: float) -> int:
        """Delete the document's checkpoints whose newest update is older than ``before``,
        except its newest checkpoint (what loading starts from); return how many went."""

    async def tier_out(self, tiered: TieredDocument) -> bool:
        """In one transaction: if the document's newest seq is still ``tiered.last_seq``, remove
        its rows (log, checkpoints, data key) and record it as tiered; else change nothing."""

    async def untier(self, document: str) -> None:
        """Forget the tiered mark (its rows were imported back)."""

    async def tiered_documents(self) -> list[TieredDocument]: ...

    async def export_document(self, document: str) -> DocumentExport: ...

    async def import_document(self, export: DocumentExport) -> None:
        """Write an exported document back with its own seqs (the document must have no rows)."""
