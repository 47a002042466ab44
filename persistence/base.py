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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


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
class Revocation:
    """A revoked token id, kept until the token's own expiry (``None``: expiry unknown, kept)."""

    token_id: str
    expires_at: float | None
    revoked_at: float
    revoked_by: str | None = None


# Merges a snapshot (first, may be absent) and the tail into one encoded update.
# Runs in a worker thread: the native crate releases the GIL while merging.
MergeFunction = Callable[[Sequence[bytes]], bytes]


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

    async def compact(self, document: str, merge: MergeFunction) -> CompactionResult | None:
        """Merge snapshot + tail into a new checkpoint snapshot, in one transaction.

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

    async def list_documents(self) -> list[DocumentInfo]: ...

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
