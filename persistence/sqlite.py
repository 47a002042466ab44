"""SqliteStore: the embedded Store, one SQLite file, for a hub running on one machine.

Every SQLite call runs on one dedicated worker thread owned by the store (a
single-thread executor created in ``open`` and shut down in ``close``), so the event
loop never blocks on disk, with one exception that never waits: ``try_append_unsynced``
commits an update batch on the caller's thread when the connection is free at that moment
(a lock guards it; one transaction there touches only the OS page cache: no fsync, no
checkpoint, no busy wait), which saves the two thread switches a hop costs per update.
Anything else, or a busy connection, goes through the worker as before.

Durability: WAL journal with ``synchronous=FULL``. Each commit (one ``append`` = one
transaction) fsyncs the WAL before ``append`` returns, so a committed batch survives
a process kill *and* an OS crash or power loss. (``NORMAL`` would already survive a
process kill, since a committed WAL frame is in the OS page cache, but could lose the
newest commits on power loss; pass ``synchronous="NORMAL"`` to trade that for speed.)

Updates can also be committed in two steps (``TwoStepStore``): ``append_unsynced`` commits
the transaction without the fsync (it survives a kill of this process) and ``sync`` fsyncs
the WAL file on a thread of its own, so the next transactions are written while the disk
works and one fsync covers them all. ``append`` is the two in a row.

Automatic WAL checkpoints are off on the connection (one could fall on a commit made on
the event loop's thread). Once enough has been written since the last one
(``CHECKPOINT_AFTER_COMMITS`` / ``CHECKPOINT_AFTER_BYTES``, about SQLite's own default of
1,000 WAL pages), ``sync`` runs a passive checkpoint on the fsync thread through a second
connection of its own, so commits go on meanwhile (a checkpoint on the one connection held
every commit back for its two fsyncs). Should that fall behind (twice the bound), the
worker checkpoints on the main connection as a backstop.

Compaction is guarded by a lease row with an expiry in the database itself, so two
processes opening the same file never compact one document at once, and a holder
that crashed stops blocking others once its lease expires.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from persistence._records import checksum, log_rows, merge_history, verified
from persistence.base import (
    ActivityEntry,
    AuditEvent,
    AuditRecord,
    CompactionResult,
    CorruptDocument,
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
    StoreUnavailable,
    TieredDocument,
    UnknownVersion,
    VersionInfo,
    WrappedDataKey,
)
from persistence.migrations import UnknownSchemaVersion, load_migrations, pending_migrations

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 10.0  # how long a write waits for another process holding the file's write lock
COMPACTION_LEASE_SECONDS = 300.0  # a compaction holding the lease longer than this may be overtaken
# A passive WAL checkpoint runs on the worker after this many commits or bytes of updates
# since the last (a small commit writes a few WAL pages: ~SQLite's default of 1,000 pages).
CHECKPOINT_AFTER_COMMITS = 300
CHECKPOINT_AFTER_BYTES = 4 << 20

_INSERT_UPDATE = (
    "INSERT INTO updates (document, payload, payload_crc, update_bytes, actor, origin_node, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class SqliteStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS,
        lease_seconds: float = COMPACTION_LEASE_SECONDS,
    ) -> None:
        self.path = os.fspath(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout_seconds
        self._lease_seconds = lease_seconds
        self._executor: ThreadPoolExecutor | None = None
        # fsyncs of the WAL run here, beside the connection's thread, so writes go on meanwhile.
        self._syncer: ThreadPoolExecutor | None = None
        self._wal_entry_synced = False  # touched only on the fsync thread
        self._checkpointer: sqlite3.Connection | None = None  # the fsync thread's own connection
        self._closed = False
        # Used on the worker thread, or by ``try_append_unsynced`` while holding ``_lock``.
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._resting = False  # the connection is in ``try_append_unsynced``'s mode (see ``_rest``)
        self._commits_since_checkpoint = 0
        self._bytes_since_checkpoint = 0

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None or self._closed:
            raise RuntimeError(f"{self!r} can only be opened once")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-fsync")
        try:
            await self._run(self._open_sync)
        except BaseException:
            await self._shutdown_executor()
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            syncer = self._syncer
            if syncer is not None:  # first, so the main connection is the last to close (WAL cleanup)
                loop = asyncio.get_running_loop()
                await asyncio.shield(loop.run_in_executor(syncer, self._close_checkpointer))
            await asyncio.shield(self._run(self._close_sync))
        finally:
            await self._shutdown_executor()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _shutdown_executor(self) -> None:
        executor, self._executor = self._executor, None
        syncer, self._syncer = self._syncer, None
        self._closed = True
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        if syncer is not None:
            await asyncio.to_thread(syncer.shutdown, wait=True, cancel_futures=True)
        self._close_checkpointer()  # no-op after a regular close

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None:
            if self._closed:
                raise StoreUnavailable(f"{self!r} is closed")
            raise RuntimeError(f"{self!r} is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, functools.partial(self._locked, function, *args))
        except RuntimeError as exc:  # the executor was shut down under us
            if self._executor is None:
                raise StoreUnavailable(f"{self!r} is closed") from exc
            raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite store {self.path!r}: {exc}") from exc

    # -- worker-thread side ---------------------------------------------------------------

    def _locked(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` with the connection to itself, then a checkpoint if one is due."""
        with self._lock:
            self._rest(False)
            try:
                return function(*args)
            finally:
                if self._connection is not None:
                    if self._checkpoint_due(overdue=True):
                        self._checkpoint()
                    self._rest(True)

    def _rest(self, resting: bool) -> None:
        """Between worker calls the connection waits in the mode ``try_append_unsynced`` needs.

        Resting: commits skip the WAL fsync and never wait for another process's write lock.
        A worker call gets the configured mode back (its commits fsync, its writes wait up to
        ``busy_timeout_seconds``), so only these two statements pay for the fast path.
        """
        db = self._connection
        if db is None or self._resting == resting:
            return
        busy_ms = 0 if resting else int(self._busy_timeout * 1000)
        db.execute(f"PRAGMA busy_timeout={busy_ms}")
        if self._synchronous == "FULL":
            db.execute(f"PRAGMA synchronous={'NORMAL' if resting else 'FULL'}")
        self._resting = resting

    def _checkpoint_due(self, *, overdue: bool = False) -> bool:
        """Enough written for a checkpoint (``overdue``: twice that, the fsync thread's fell behind)."""
        times = 2 if overdue else 1
        return (
            self._commits_since_checkpoint >= times * CHECKPOINT_AFTER_COMMITS
            or self._bytes_since_checkpoint >= times * CHECKPOINT_AFTER_BYTES
        )

    def _checkpoint(self) -> None:
        self._commits_since_checkpoint = self._bytes_since_checkpoint = 0
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the next one retries; the WAL only grows meanwhile
            logger.warning("SQLite store %s: WAL checkpoint failed: %s", self.path, exc)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreUnavailable(f"{self!r} is closed")
        return self._connection

    def _open_sync(self) -> None:
        try:
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        try:
            self._configure(connection)
            self._migrate(connection)
        except sqlite3.Error as exc:
            connection.close()
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _configure(self, connection: sqlite3.Connection) -> None:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal" and self.path != ":memory:":
            raise StoreUnavailable(f"SQLite store {self.path!r}: cannot use WAL mode (got {mode!r})")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA wal_autocheckpoint=0")  # the worker checkpoints (module doc)
        # Freed pages (compacted payloads, erased documents) are overwritten with zeros, so
        # erased content does not linger in the file.
        connection.execute("PRAGMA secure_delete=ON")

    def _close_sync(self) -> None:
        self._resting = False
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _migrate(self, connection: sqlite3.Connection) -> None:
        migrations = load_migrations("sqlite")
        with _transaction(connection):
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            applied = {row[0] for row in connection.execute("SELECT version FROM schema_version")}
            try:
                pending = pending_migrations(migrations, applied, f"SQLite store {self.path!r}")
            except UnknownSchemaVersion as exc:
                raise StoreUnavailable(str(exc)) from exc
            for migration in pending:
                for statement in _statements(migration.sql):
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                logger.info(
                    "SQLite store %s: applied migration %03d_%s", self.path, migration.version, migration.name
                )

    def _ping_sync(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    def _append_sync(self, entries: Sequence[LogEntry], *, unsynced: bool = False) -> list[int]:
        db = self._db
        rows = [
            (e.document, e.update, checksum(e.update), len(e.update), e.actor, e.origin_node, e.timestamp)
            for e in entries
        ]
        seqs: list[int] = []
        if unsynced:  # this one commit skips the WAL fsync; ``sync`` does it (the setting is per connection)
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            with _transaction(db):
                cursor = db.cursor()
                for row in rows:
                    cursor.execute(_INSERT_UPDATE, row)
                    assert cursor.lastrowid is not None
                    seqs.append(cursor.lastrowid)
        finally:
            if unsynced:
                db.execute(f"PRAGMA synchronous={self._synchronous}")
        self._commits_since_checkpoint += 1
        self._bytes_since_checkpoint += sum(len(e.update) for e in entries)
        return seqs

    def _fsync_wal(self) -> None:
        """Flush the WAL file: every transaction committed before this call survives power loss."""
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY)
        except FileNotFoundError:  # no WAL (nothing written since the last close): nothing to flush
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if not self._wal_entry_synced:  # the WAL file's directory entry, once (as SQLite does)
            directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            self._wal_entry_synced = True

    def _parts_sync(self, document: str, upto: int | None) -> StoredDocument:
        db = self._db
        limit = upto if upto is not None else 2**63 - 1
        with _transaction(db, "BEGIN"):  # one read snapshot for checkpoint and tail
            checkpoint = db.execute(
                "SELECT seq, snapshot, snapshot_crc FROM checkpoints"
                " WHERE document = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
                (document, limit),
            ).fetchone()
            base = checkpoint[0] if checkpoint else 0
            rows = db.execute(
                "SELECT seq, payload, payload_crc FROM updates WHERE document = ? AND seq > ? AND seq <= ?"
                " ORDER BY seq",
                (document, base, limit),
            ).fetchall()
            compacted_upto = db.execute(
                "SELECT coalesce(max(seq), 0) FROM checkpoints WHERE document = ?", (document,)
            ).fetchone()[0]
        snapshot = (
            verified(document, f"checkpoint {base}", checkpoint[1], checkpoint[2]) if checkpoint else None
        )
        tail = []
        for seq, payload, crc in rows:
            if payload is None and seq <= compacted_upto:
                raise UnknownVersion(f"version {upto} of {document!r} was compacted away")
            tail.append(verified(document, f"update {seq}", payload, crc))
        last = rows[-1][0] if rows else base
        return StoredDocument(snapshot, tail, last)

    def _read_version_sync(self, document: str, seq: int) -> StoredDocument:
        exists = self._db.execute(
            "SELECT 1 FROM updates WHERE document = ? AND seq = ?", (document, seq)
        ).fetchone()
        if exists is None:
            raise UnknownVersion(f"{document!r} has no version {seq}")
        return self._parts_sync(document, seq)

    def _acquire_lease_sync(self, document: str, holder: str) -> bool:
        db = self._db
        now = time.time()
        with _transaction(db):
            row = db.execute(
                "SELECT holder, expires_at FROM compaction_leases WHERE document = ?", (document,)
            ).fetchone()
            if row is not None and row[1] > now:
                return False
            if row is not None:
                logger.warning(
                    "SQLite store %s: compaction lease of %r by %s expired", self.path, document, row[0]
                )
            db.execute(
                "INSERT OR REPLACE INTO compaction_leases (document, holder, expires_at) VALUES (?, ?, ?)",
                (document, holder, now + self._lease_seconds),
            )
        return True

    def _release_lease_sync(self, document: str, holder: str) -> None:
        with _transaction(self._db):
            self._db.execute(
                "DELETE FROM compaction_leases WHERE document = ? AND holder = ?", (document, holder)
            )

    def _commit_compaction_sync(
        self, document: str, holder: str, covered: int, merged: bytes, entries: int
    ) -> CompactionResult | None:
        db = self._db
        with _transaction(db):
            row = db.execute(
                "SELECT holder FROM compaction_leases WHERE document = ?", (document,)
            ).fetchone()
            if row is None or row[0] != holder:
                logger.warning(
                    "SQLite store %s: compaction of %r outlived its lease; result discarded",
                    self.path,
                    document,
                )
                return None
            previous = db.execute(
                "SELECT coalesce(max(seq), 0), max(created_at) FROM checkpoints WHERE document = ?",
                (document,),
            ).fetchone()
            span = db.execute(
                "SELECT max(created_at) FROM updates WHERE document = ? AND seq > ? AND seq <= ?",
                (document, previous[0], covered),
            ).fetchone()
            actors = [
                actor
                for (actor,) in db.execute(
                    "SELECT DISTINCT actor FROM updates WHERE document = ? AND seq > ? AND seq <= ?"
                    " AND actor IS NOT NULL ORDER BY actor",
                    (document, previous[0], covered),
                )
            ]
            created_at = max(value for value in (previous[1], span[0]) if value is not None)
            db.execute(
                "INSERT INTO checkpoints"
                " (document, seq, snapshot, snapshot_crc, created_at, compacted_at, merged, actors)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document,
                    covered,
                    merged,
                    checksum(merged),
                    created_at,
                    time.time(),
                    entries,
                    json.dumps(actors),
                ),
            )
            db.execute(
                "UPDATE updates SET payload = NULL WHERE document = ? AND seq > ? AND seq <= ?",
                (document, previous[0], covered),
            )
            db.execute("DELETE FROM compaction_leases WHERE document = ?", (document,))
        return CompactionResult(document, covered, entries, len(merged))

    def _history_sync(self, document: str, limit: int) -> list[VersionInfo]:
        db = self._db
        checkpoints = [
            VersionInfo(seq, created_at, json.loads(actors), size, "checkpoint")
            for seq, created_at, actors, size in db.execute(
                "SELECT seq, created_at, actors, length(snapshot) FROM checkpoints WHERE document = ?"
                " ORDER BY seq DESC LIMIT ?",
                (document, limit),
            )
        ]
        updates = [
            VersionInfo(seq, created_at, [actor] if actor else [], size, "update")
            for seq, created_at, actor, size in db.execute(
                "SELECT seq, created_at, actor, update_bytes FROM updates"
                " WHERE document = ? AND payload IS NOT NULL ORDER BY seq DESC LIMIT ?",
                (document, limit),
            )
        ]
        return merge_history(checkpoints, updates, limit)

    def _activity_sync(self, document: str, limit: int) -> list[ActivityEntry]:
        return [
            ActivityEntry(*row)
            for row in self._db.execute(
                "SELECT seq, created_at, actor, origin_node, update_bytes FROM updates WHERE document = ?"
                " ORDER BY seq DESC LIMIT ?",
                (document, limit),
            )
        ]

    def _list_documents_sync(self) -> list[DocumentInfo]:
        return [
            DocumentInfo(*row)
            for row in self._db.execute(
                "SELECT u.document, u.seq, u.created_at,"
                " (SELECT count(*) FROM updates t WHERE t.document = u.document AND t.payload IS NOT NULL)"
                " FROM updates u JOIN (SELECT document, max(seq) AS seq FROM updates GROUP BY document) m"
                " ON u.seq = m.seq WHERE u.document NOT IN (SELECT document FROM deleted_documents)"
                " ORDER BY u.document"
            )
        ]

    # -- the Store port -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._run(self._ping_sync)

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        if not entries:
            return []
        return await self._run(self._append_sync, list(entries))

    async def append_unsynced(self, entries: Sequence[LogEntry]) -> list[int]:
        """``append`` without waiting for the disk: safe from a kill of this process; ``sync`` next."""
        if not entries:
            return []
        if self._synchronous != "FULL" or self.path == ":memory:":
            return await self.append(entries)  # nothing to split: no fsync per commit anyway
        return await self._run(functools.partial(self._append_sync, list(entries), unsynced=True))

    def try_append_unsynced(self, entries: Sequence[LogEntry]) -> list[int] | None:
        """``append_unsynced`` on the caller's thread, if that needs no waiting; else None.

        Only when the connection is free this instant (the worker is not using it), no
        checkpoint is due and no other process holds the file's write lock (the resting
        connection does not wait for it): then the commit is a write into the OS page cache,
        cheaper than the two thread switches of a hop to the worker. None: nothing was
        written, use ``append_unsynced``.
        """
        if not entries or not self._resting or self._checkpoint_due(overdue=True):
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._connection is None or not self._resting:
                return None
            try:
                return self._append_sync(entries)
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):  # another process writes: wait on the worker
                    return None
                raise StoreUnavailable(f"SQLite store {self.path!r}: {exc}") from exc
        finally:
            self._lock.release()

    async def sync(self) -> None:
        """Make every transaction committed so far survive an OS crash or power loss.

        Also runs the WAL checkpoint when one is due (see the module doc).
        """
        syncer = self._syncer
        if syncer is None:
            raise StoreUnavailable(f"{self!r} is closed" if self._closed else f"{self!r} is not open")
        if self.path == ":memory:":
            return
        fsync = self._synchronous == "FULL"
        if not fsync and not self._checkpoint_due():
            return
        try:
            await asyncio.get_running_loop().run_in_executor(syncer, self._sync_and_checkpoint, fsync)
        except RuntimeError as exc:  # the executor was shut down under us
            raise StoreUnavailable(f"{self!r} is closed") from exc

    def _sync_and_checkpoint(self, fsync: bool) -> None:
        """On the fsync thread: the WAL's fsync, then a passive checkpoint if one is due."""
        if fsync:
            self._fsync_wal()
        if not self._checkpoint_due():
            return
        self._commits_since_checkpoint = self._bytes_since_checkpoint = 0
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._checkpointer.execute(f"PRAGMA synchronous={self._synchronous}")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the next one retries (and the worker's backstop is there)
            logger.warning("SQLite store %s: WAL checkpoint failed: %s", self.path, exc)

    def _close_checkpointer(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()

    async def load(self, document: str) -> StoredDocument:
        try:
            return await self._run(self._parts_sync, document, None)
        except UnknownVersion as exc:  # a tail row lost its payload without a checkpoint covering it
            raise CorruptDocument(f"document {document!r}: {exc}") from exc

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        return await self._run(self._read_version_sync, document, seq)

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        holder = uuid.uuid4().hex
        if not await self._run(self._acquire_lease_sync, document, holder):
            return None
        try:
            try:
                parts = await self._run(self._parts_sync, document, upto)
            except UnknownVersion:  # `upto` is inside an already compacted range: nothing to do
                return None
            if not parts.tail:
                return None
            inputs = parts.parts
            merged = await asyncio.to_thread(merge, inputs)
            return await self._run(
                self._commit_compaction_sync, document, holder, parts.last_seq, merged, len(parts.tail)
            )
        finally:
            # Shielded: a cancelled compaction must still hand the lease back.
            await asyncio.shield(self._run(self._release_lease_sync, document, holder))

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        return await self._run(self._history_sync, document, limit)

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        return await self._run(self._activity_sync, document, limit)

    async def list_documents(self) -> list[DocumentInfo]:
        return await self._run(self._list_documents_sync)

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        if events:
            await self._run(lambda: _append_audit_sync(self._db, events))

    async def audit(
        self, *, document: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        sql, params = _audit_query(document, subject, limit)

        def read() -> list[AuditEvent]:
            return [AuditEvent(*row) for row in self._db.execute(sql, params).fetchall()]

        return await self._run(read)

    # -- change events ----------------------------------------------------------------------

    async def add_revocation(self, revocation: Revocation) -> None:
        def write() -> None:
            with _transaction(self._db):
                self._db.execute(_UPSERT_REVOCATION, _revocation_row(revocation))
                self._db.execute(
                    "DELETE FROM revocations WHERE expires_at IS NOT NULL AND expires_at <= ?",
                    (revocation.revoked_at,),
                )

        await self._run(write)

    async def revocations(self, now: float) -> list[Revocation]:
        def read() -> list[Revocation]:
            rows = self._db.execute(
                "SELECT token_id, expires_at, revoked_at, revoked_by FROM revocations"
                " WHERE expires_at IS NULL OR expires_at > ?",
                (now,),
            ).fetchall()
            return [Revocation(*row) for row in rows]

        return await self._run(read)

    async def pending_events(self, sink: str, after_seq: int = 0) -> list[PendingDocument]:
        def scan() -> list[PendingDocument]:
            return [
                PendingDocument(*row)
                for row in self._db.execute(_PENDING_EVENTS, (sink, after_seq)).fetchall()
            ]

        return await self._run(scan)

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        def read() -> list[LoggedUpdate]:
            rows = self._db.execute(
                "SELECT seq, payload, payload_crc, actor, origin_node, created_at FROM updates"
                " WHERE document = ? AND seq > ? ORDER BY seq LIMIT ?",
                (document, after_seq, limit),
            ).fetchall()
            return [
                LoggedUpdate(
                    seq,
                    None if payload is None else verified(document, f"update {seq}", payload, crc),
                    actor,
                    node,
                    at,
                )
                for seq, payload, crc, actor, node, at in rows
            ]

        return await self._run(read)

    async def event_cursor(self, sink: str, document: str) -> int:
        def read() -> int:
            row = self._db.execute(
                "SELECT seq FROM event_cursors WHERE sink = ? AND document = ?", (sink, document)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._run(read)

    async def advance_event_cursors(self, sink: str, positions: Mapping[str, int]) -> None:
        def write() -> None:
            now = time.time()
            with _transaction(self._db):
                self._db.executemany(
                    "INSERT INTO event_cursors (sink, document, seq, published_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (sink, document) DO UPDATE SET seq = excluded.seq,"
                    " published_at = excluded.published_at WHERE excluded.seq > event_cursors.seq",
                    [(sink, document, seq, now) for document, seq in positions.items()],
                )

        if positions:
            await self._run(write)

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        def take() -> bool:
            now = time.time()
            with _transaction(self._db):
                row = self._db.execute(
                    "SELECT holder, expires_at FROM event_leases WHERE name = ?", (name,)
                ).fetchone()
                if row is not None and row[0] != holder and row[1] > now:
                    return False
                self._db.execute(
                    "INSERT OR REPLACE INTO event_leases (name, holder, expires_at) VALUES (?, ?, ?)",
                    (name, holder, now + ttl_seconds),
                )
            return True

        return await self._run(take)

    async def release_lease(self, name: str, holder: str) -> None:
        def release() -> None:
            with _transaction(self._db):
                self._db.execute("DELETE FROM event_leases WHERE name = ? AND holder = ?", (name, holder))

        await self._run(release)

    async def read_audit(self, after_id: int, limit: int) -> list[AuditRecord]:
        def read() -> list[AuditRecord]:
            rows = self._db.execute(
                "SELECT id, at, action, subject, document, node, detail FROM audit WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
            return [AuditRecord(row[0], AuditEvent(*row[1:])) for row in rows]

        return await self._run(read)

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        def write() -> None:
            with _transaction(self._db):
                self._db.executemany(
                    "INSERT INTO event_deliveries (sink, event_id, event_type, attempt, at, ok, status,"
                    " error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [dataclasses.astuple(r) for r in records],
                )

        if records:
            await self._run(write)

    async def deliveries(self, sink: str, limit: int = 100) -> list[DeliveryRecord]:
        def read() -> list[DeliveryRecord]:
            rows = self._db.execute(
                "SELECT sink, event_id, event_type, attempt, at, ok, status, error, duration_ms"
                " FROM event_deliveries WHERE sink = ? ORDER BY id DESC LIMIT ?",
                (sink, limit),
            ).fetchall()
            return [DeliveryRecord(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8]) for r in rows]

        return await self._run(read)

    async def add_dead_letter(self, letter: DeadLetter) -> int:
        def write() -> int:
            with _transaction(self._db):
                cursor = self._db.execute(
                    "INSERT INTO event_dead_letters (sink, event_id, event_type, document, payload, error,"
                    " attempts, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    dataclasses.astuple(letter)[1:],
                )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return await self._run(write)

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        def read() -> list[DeadLetter]:
            rows = self._db.execute(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM event_dead_letters"
                " WHERE ? IS NULL OR sink = ? ORDER BY id DESC LIMIT ?",
                (sink, sink, limit),
            ).fetchall()
            return [DeadLetter(*row) for row in rows]

        return await self._run(read)

    async def remove_dead_letter(self, letter_id: int) -> DeadLetter | None:
        def remove() -> DeadLetter | None:
            with _transaction(self._db):
                row = self._db.execute(
                    f"SELECT {_DEAD_LETTER_COLUMNS} FROM event_dead_letters WHERE id = ?", (letter_id,)
                ).fetchone()
                if row is None:
                    return None
                self._db.execute("DELETE FROM event_dead_letters WHERE id = ?", (letter_id,))
            return DeadLetter(*row)

        return await self._run(remove)

    # -- data lifecycle ---------------------------------------------------------------

    async def data_key(self, document: str) -> WrappedDataKey | None:
        def read() -> WrappedDataKey | None:
            row = self._db.execute(_SELECT_KEY + " WHERE document = ?", (document,)).fetchone()
            return WrappedDataKey(*row) if row else None

        return await self._run(read)

    async def add_data_key(self, key: WrappedDataKey) -> WrappedDataKey:
        def write() -> WrappedDataKey:
            with _transaction(self._db):
                self._db.execute(
                    "INSERT OR IGNORE INTO data_keys (document, key_id, master_key_id, wrapped, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (key.document, key.key_id, key.master_key_id, key.wrapped, key.created_at),
                )
                row = self._db.execute(_SELECT_KEY + " WHERE document = ?", (key.document,)).fetchone()
            return WrappedDataKey(*row)

        return await self._run(write)

    async def data_keys(self) -> list[WrappedDataKey]:
        def read() -> list[WrappedDataKey]:
            return [WrappedDataKey(*row) for row in self._db.execute(_SELECT_KEY + " ORDER BY document")]

        return await self._run(read)

    async def rewrap_data_key(self, old: WrappedDataKey, new: WrappedDataKey) -> bool:
        def write() -> bool:
            with _transaction(self._db):
                cursor = self._db.execute(
                    "UPDATE data_keys SET master_key_id = ?, wrapped = ?"
                    " WHERE document = ? AND master_key_id = ? AND wrapped = ?",
                    (new.master_key_id, new.wrapped, old.document, old.master_key_id, old.wrapped),
                )
            return cursor.rowcount == 1

        return await self._run(write)

    async def mark_deleted(self, deleted: DeletedDocument) -> bool:
        def write() -> bool:
            with _transaction(self._db):
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO deleted_documents (document, deleted_at, deleted_by, purge_after)"
                    " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM updates WHERE document = ?)",
                    (deleted.name, deleted.deleted_at, deleted.deleted_by, deleted.purge_after, deleted.name),
                )
            return cursor.rowcount == 1

        return await self._run(write)

    async def undelete(self, document: str) -> bool:
        def write() -> bool:
            with _transaction(self._db):
                cursor = self._db.execute("DELETE FROM deleted_documents WHERE document = ?", (document,))
            return cursor.rowcount == 1

        return await self._run(write)

    async def deleted_documents(self) -> list[DeletedDocument]:
        def read() -> list[DeletedDocument]:
            return [
                DeletedDocument(*row)
                for row in self._db.execute(
                    "SELECT document, deleted_at, deleted_by, purge_after FROM deleted_documents"
                    " ORDER BY document"
                )
            ]

        return await self._run(read)

    async def erase(self, document: str) -> int:
        def write() -> int:
            removed = 0
            with _transaction(self._db):
                for table in (
                    "updates",
                    "checkpoints",
                    "data_keys",
                    "deleted_documents",
                    "compaction_leases",
                    "tiered_documents",
                ):
                    removed += self._db.execute(
                        f"DELETE FROM {table} WHERE document = ?", (document,)
                    ).rowcount
            # Copy the WAL into the file and truncate it: otherwise older frames holding the
            # erased rows stay in the -wal file until the next automatic checkpoint.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return removed

        return await self._run(write)

    async def prune_checkpoints(self, document: str, before: float) -> int:
        def write() -> int:
            with _transaction(self._db):
                cursor = self._db.execute(
                    "DELETE FROM checkpoints WHERE document = ? AND created_at < ?"
                    " AND seq < (SELECT max(seq) FROM checkpoints WHERE document = ?)",
                    (document, before, document),
                )
            return cursor.rowcount

        return await self._run(write)

    async def tier_out(self, tiered: TieredDocument) -> bool:
        def write() -> bool:
            db = self._db
            with _transaction(db):
                newest = db.execute(
                    "SELECT max(seq) FROM updates WHERE document = ?", (tiered.name,)
                ).fetchone()[0]
                if newest != tiered.last_seq:
                    return False
                for table in ("updates", "checkpoints", "data_keys", "compaction_leases"):
                    db.execute(f"DELETE FROM {table} WHERE document = ?", (tiered.name,))
                db.execute(
                    "INSERT INTO tiered_documents (document, last_seq, updated_at, tiered_at) VALUES (?, ?, ?, ?)",
                    (tiered.name, tiered.last_seq, tiered.updated_at, tiered.tiered_at),
                )
            return True

        return await self._run(write)

    async def untier(self, document: str) -> None:
        def write() -> None:
            with _transaction(self._db):
                self._db.execute("DELETE FROM tiered_documents WHERE document = ?", (document,))

        await self._run(write)

    async def tiered_documents(self) -> list[TieredDocument]:
        def read() -> list[TieredDocument]:
            return [
                TieredDocument(*row)
                for row in self._db.execute(
                    "SELECT document, last_seq, updated_at, tiered_at FROM tiered_documents ORDER BY document"
                )
            ]

        return await self._run(read)

    async def export_document(self, document: str) -> DocumentExport:
        def read() -> DocumentExport:
            db = self._db
            with _transaction(db, "BEGIN"):
                updates = [
                    ExportedUpdate(*row)
                    for row in db.execute(
                        "SELECT seq, payload, update_bytes, actor, origin_node, created_at FROM updates"
                        " WHERE document = ? ORDER BY seq",
                        (document,),
                    )
                ]
                checkpoints = [
                    ExportedCheckpoint(seq, snapshot, created_at, merged, json.loads(actors))
                    for seq, snapshot, created_at, merged, actors in db.execute(
                        "SELECT seq, snapshot, created_at, merged, actors FROM checkpoints"
                        " WHERE document = ? ORDER BY seq",
                        (document,),
                    )
                ]
                key = db.execute(_SELECT_KEY + " WHERE document = ?", (document,)).fetchone()
            return DocumentExport(document, updates, checkpoints, WrappedDataKey(*key) if key else None)

        return await self._run(read)

    async def import_document(self, export: DocumentExport) -> None:
        def write() -> None:
            db = self._db
            with _transaction(db):
                if db.execute("SELECT 1 FROM updates WHERE document = ?", (export.document,)).fetchone():
                    raise ValueError(f"document {export.document!r} already has rows")
                db.executemany(
                    "INSERT INTO updates (seq, document, payload, payload_crc, update_bytes, actor,"
                    " origin_node, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    log_rows(export),
                )
                db.executemany(
                    "INSERT INTO checkpoints (document, seq, snapshot, snapshot_crc, created_at,"
                    " compacted_at, merged, actors) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            export.document,
                            c.seq,
                            c.snapshot,
                            checksum(c.snapshot),
                            c.created_at,
                            time.time(),
                            c.merged,
                            json.dumps(list(c.actors)),
                        )
                        for c in export.checkpoints
                    ],
                )
                if export.data_key is not None:
                    k = export.data_key
                    db.execute(
                        "INSERT OR REPLACE INTO data_keys (document, key_id, master_key_id, wrapped,"
                        " created_at) VALUES (?, ?, ?, ?, ?)",
                        (k.document, k.key_id, k.master_key_id, k.wrapped, k.created_at),
                    )

        await self._run(write)


_SELECT_KEY = "SELECT document, key_id, master_key_id, wrapped, created_at FROM data_keys"

_DEAD_LETTER_COLUMNS = "id, sink, event_id, event_type, document, payload, error, attempts, at"

# Documents with rows a sink has not published: the newest cursor per document decides.
_PENDING_EVENTS = """
SELECT u.document, coalesce(c.seq, 0), max(u.seq), count(*), min(u.created_at)
FROM updates u LEFT JOIN event_cursors c ON c.sink = ?1 AND c.document = u.document
WHERE u.seq > ?2 AND u.seq > coalesce(c.seq, 0)
GROUP BY u.document, c.seq
ORDER BY u.document
"""


# A second revocation of one token keeps the longer lifetime (NULL expiry: kept for good).
_UPSERT_REVOCATION = (
    "INSERT INTO revocations (token_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (token_id) DO UPDATE SET"
    " expires_at = CASE WHEN revocations.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL"
    " ELSE max(revocations.expires_at, excluded.expires_at) END"
)


def _revocation_row(revocation: Revocation) -> tuple[str, float | None, float, str | None]:
    return (revocation.token_id, revocation.expires_at, revocation.revoked_at, revocation.revoked_by)


def _append_audit_sync(db: sqlite3.Connection, events: Sequence[AuditEvent]) -> None:
    with _transaction(db):
        db.executemany(
            "INSERT INTO audit (at, action, subject, document, node, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [(e.at, e.action, e.subject, e.document, e.node, e.detail) for e in events],
        )


def _audit_query(document: str | None, subject: str | None, limit: int) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if document is not None:
        clauses.append("document = ?")
        params.append(document)
    if subject is not None:
        clauses.append("subject = ?")
        params.append(subject)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT at, action, subject, document, node, detail FROM audit{where} ORDER BY id DESC LIMIT ?"
    return sql, [*params, limit]


class _transaction:
    """BEGIN ... COMMIT on an autocommit-mode connection; ROLLBACK on any exception."""

    def __init__(self, connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self._connection = connection
        self._begin = begin

    def __enter__(self) -> None:
        self._connection.execute(self._begin)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._connection.execute("COMMIT")
        elif self._connection.in_transaction:
            self._connection.execute("ROLLBACK")


def _statements(script: str) -> list[str]:
    """Split a migration file into complete statements (sqlite3.complete_statement decides)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")
    return statements
