"""PostgresStore: the Store on PostgreSQL through an asyncpg pool, shared by any number of hub nodes.

Writes: ``append`` is one transaction (group commit): it takes a transaction-scoped
advisory lock per document in the batch (sorted, so two batches never deadlock), then
inserts every row, all in one ``INSERT ... SELECT FROM unnest(...)`` statement (one
round trip, one implicit transaction). Holding the document lock from seq allocation to
commit makes seq order equal commit order within a document, which is what lets a
checkpoint cover an exact prefix: no update of that document can later commit with a
lower seq.

Compaction runs in one transaction under ``pg_try_advisory_xact_lock`` on a hash of the
document name, so two nodes never compact one document at once; the lock goes away
with the transaction, also when a node dies mid-way.

Errors: anything that means "the database cannot be reached or is going away" becomes
``StoreUnavailable`` naming host, port and database, never the password. Pooled
connections broken by a server restart are replaced on the next call, so the store
recovers on its own once the server is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]

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
from persistence.redaction import redact_secrets, redact_url

logger = logging.getLogger(__name__)

# Defaults for code that builds the adapter itself; the hub passes its `store_*` settings
# (persistence/factory.py, `StoreOptions`).
CONNECT_TIMEOUT_SECONDS = 5.0  # one connection attempt (open, and reconnects after an outage)
COMMAND_TIMEOUT_SECONDS = 30.0  # one statement
ACQUIRE_TIMEOUT_SECONDS = 10.0  # waiting for a free pooled connection (includes connecting)
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10

# Advisory lock keys are (namespace, key) int4 pairs; namespaces keep the purposes apart.
MIGRATION_LOCK = (0x4E4F5641, 0)  # "NOVA"
APPEND_LOCK_NAMESPACE = 0x4E4F5642
COMPACT_LOCK_NAMESPACE = 0x4E4F5643

# Errors that mean the server is unreachable, restarting, overloaded or rejects us.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, "cannot connect now"
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # wrong user / password
    asyncpg.exceptions.InvalidCatalogNameError,  # database does not exist
)

# One statement, so one round trip and one implicit transaction (group commit). The
# uncorrelated scalar subquery is an InitPlan: it runs once, before the first row is
# formed, so every document lock is held before any seq is drawn, until the commit.
_APPEND = """
WITH locks AS MATERIALIZED (
    SELECT pg_advisory_xact_lock($8, key) FROM unnest($9::integer[]) AS key
)
INSERT INTO updates (document, payload, payload_crc, update_bytes, actor, origin_node, created_at)
SELECT document, payload, payload_crc, update_bytes, actor, origin_node, created_at
FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::integer[], $5::text[], $6::text[], $7::float8[])
     WITH ORDINALITY AS t(document, payload, payload_crc, update_bytes, actor, origin_node, created_at, ord)
WHERE (SELECT count(*) FROM locks) >= 0
ORDER BY ord
RETURNING seq
"""

# One statement, hence one snapshot: the newest checkpoint <= $2 (kind 0), the log rows
# after it up to $2 (kind 1), and the newest checkpoint overall (kind 2).
_PARTS = """
WITH cp AS (
    SELECT seq, snapshot, snapshot_crc FROM checkpoints
    WHERE document = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1
)
SELECT 0 AS kind, seq, snapshot AS payload, snapshot_crc AS crc FROM cp
UNION ALL
SELECT 1, u.seq, u.payload, u.payload_crc FROM updates u
WHERE u.document = $1 AND u.seq > coalesce((SELECT seq FROM cp), 0) AND u.seq <= $2
UNION ALL
SELECT 2, coalesce(max(seq), 0), NULL, NULL FROM checkpoints WHERE document = $1
ORDER BY kind, seq
"""

_LIST_DOCUMENTS = """
SELECT l.document, l.seq, l.created_at, coalesce(t.entries, 0) AS entries
FROM (SELECT DISTINCT ON (document) document, seq, created_at FROM updates ORDER BY document, seq DESC) l
LEFT JOIN (SELECT document, count(*) AS entries FROM updates WHERE payload IS NOT NULL GROUP BY document) t
    USING (document)
WHERE NOT EXISTS (SELECT 1 FROM deleted_documents d WHERE d.document = l.document)
ORDER BY l.document COLLATE "C"
"""

_MAX_SEQ = 2**63 - 1

# Documents with rows a sink has not published: the newest cursor per document decides.
_PENDING_EVENTS = """
SELECT u.document, coalesce(c.seq, 0) AS cursor, max(u.seq) AS last_seq, count(*) AS pending,
       min(u.created_at) AS oldest_at
FROM updates u LEFT JOIN event_cursors c ON c.sink = $1 AND c.document = u.document
WHERE u.seq > $2 AND u.seq > coalesce(c.seq, 0)
GROUP BY u.document, c.seq
ORDER BY u.document COLLATE "C"
"""

_DEAD_LETTER_COLUMNS = "id, sink, event_id, event_type, document, payload, error, attempts, at"


def lock_key(document: str) -> int:
    """A stable signed 32-bit key for a document name (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(document.encode(), digest_size=4).digest(), "big", signed=True)


class PostgresStore:
    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
        acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
        min_connections: int = POOL_MIN_SIZE,
        max_connections: int = POOL_MAX_SIZE,
    ) -> None:
        self._dsn = dsn
        self._target = f"PostgreSQL {redact_url(dsn)}"  # for messages: never the password
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
        self._secrets = [s for s in {password, unquote(password or "")} if s]
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._acquire_timeout = acquire_timeout
        self._min_connections = min_connections
        self._max_connections = max_connections
        self._pool: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresStore({self._target})"

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None or self._closed:
            raise RuntimeError(f"{self!r} can only be opened once")
        try:
            async with asyncio.timeout(self._connect_timeout * 2):
                pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min_connections,
                    max_size=self._max_connections,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                )
        except (*_UNAVAILABLE, asyncpg.PostgresError, ValueError) as exc:
            # `from None`: the message says what failed; the cause could echo connection details.
            raise StoreUnavailable(f"cannot connect to {self._target}: {self._reason(exc)}") from None
        self._pool = pool
        try:
            await self._migrate()
        except BaseException:
            self._pool = None
            pool.terminate()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        self._closed = True
        if pool is None:
            return
        try:
            # Waits for connections in use (e.g. a running compaction) to come back.
            await asyncio.wait_for(asyncio.shield(pool.close()), self._command_timeout)
        except TimeoutError:
            logger.warning(
                "%s: pool did not close within %.0fs; terminating it", self._target, self._command_timeout
            )
            pool.terminate()
        except asyncio.CancelledError:
            pool.terminate()
            raise

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _reason(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return redact_secrets(text, self._secrets)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; connection-level failures become StoreUnavailable."""
        pool = self._pool
        if pool is None:
            if self._closed:
                raise StoreUnavailable(f"{self!r} is closed")
            raise RuntimeError(f"{self!r} is not open")
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as connection:
                yield connection
        except _UNAVAILABLE as exc:
            # After a server restart every idle pooled connection is dead too: replace them
            # all on their next use instead of failing once per connection.
            await pool.expire_connections()
            raise StoreUnavailable(f"{self._target}: {self._reason(exc)}") from exc

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Any]:
        """A connection in a read-only repeatable-read transaction: several reads, one point in time."""
        async with (
            self._connection() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield connection

    async def _execute(self, sql: str, *args: Any) -> str:
        """One statement on a pooled connection; its status (e.g. "UPDATE 1")."""
        async with self._connection() as connection:
            status: str = await connection.execute(sql, *args)
        return status

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._connection() as connection:
            rows: list[Any] = await connection.fetch(sql, *args)
        return rows

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with self._connection() as connection:
            return await connection.fetchrow(sql, *args)

    async def _fetchval(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        async with self._connection() as connection:
            return await connection.fetchval(sql, *args, timeout=timeout)

    async def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._connection() as connection:
            await connection.executemany(sql, rows)

    async def _migrate(self) -> None:
        migrations = load_migrations("postgres")
        async with self._connection() as connection, connection.transaction():
            # Two nodes starting at once: the second waits here, then finds nothing to do.
            await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {row[0] for row in await connection.fetch("SELECT version FROM schema_version")}
            try:
                pending = pending_migrations(migrations, applied, self._target)
            except UnknownSchemaVersion as exc:
                raise StoreUnavailable(str(exc)) from exc
            for migration in pending:
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                logger.info("%s: applied migration %03d_%s", self._target, migration.version, migration.name)

    # -- the Store port -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._fetchval("SELECT 1", timeout=self._connect_timeout)

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        if not entries:
            return []
        keys = sorted({lock_key(entry.document) for entry in entries})
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        for entry in entries:
            for column, value in zip(
                columns,
                (
                    entry.document,
                    entry.update,
                    checksum(entry.update),
                    len(entry.update),
                    entry.actor,
                    entry.origin_node,
                    entry.timestamp,
                ),
                strict=True,
            ):
                column.append(value)
        rows = await self._fetch(_APPEND, *columns, APPEND_LOCK_NAMESPACE, keys)
        if len(rows) != len(entries):
            raise StoreUnavailable(f"{self._target}: inserted {len(rows)} rows for {len(entries)} updates")
        # seqs were drawn in entry order (ORDER BY ord); sorting makes that independent of RETURNING order.
        return sorted(row[0] for row in rows)

    async def _parts(self, connection: Any, document: str, upto: int | None) -> StoredDocument:
        rows = await connection.fetch(_PARTS, document, _MAX_SEQ if upto is None else upto)
        compacted_upto = next(row[1] for row in rows if row[0] == 2)
        snapshot, tail, last = None, [], 0
        for kind, seq, payload, crc in rows:
            if kind == 0:
                snapshot, last = verified(document, f"checkpoint {seq}", payload, crc), seq
            elif kind == 1:
                if payload is None and seq <= compacted_upto:
                    raise UnknownVersion(f"version {upto} of {document!r} was compacted away")
                tail.append(verified(document, f"update {seq}", payload, crc))
                last = seq
        return StoredDocument(snapshot, tail, last)

    async def load(self, document: str) -> StoredDocument:
        async with self._connection() as connection:
            try:
                return await self._parts(connection, document, None)
            except UnknownVersion as exc:  # a tail row lost its payload without a checkpoint covering it
                raise CorruptDocument(f"document {document!r}: {exc}") from exc

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        async with self._snapshot() as connection:
            exists = await connection.fetchval(
                "SELECT 1 FROM updates WHERE document = $1 AND seq = $2", document, seq
            )
            if exists is None:
                raise UnknownVersion(f"{document!r} has no version {seq}")
            return await self._parts(connection, document, seq)

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        async with self._connection() as connection, connection.transaction():
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, $2)", COMPACT_LOCK_NAMESPACE, lock_key(document)
            )
            if not locked:
                return None
            try:
                parts = await self._parts(connection, document, upto)
            except UnknownVersion:  # `upto` is inside an already compacted range: nothing to do
                return None
            if not parts.tail:
                return None
            inputs = parts.parts
            merged = await asyncio.to_thread(merge, inputs)
            covered = parts.last_seq
            previous = await connection.fetchrow(
                "SELECT coalesce(max(seq), 0) AS seq, max(created_at) AS created_at"
                " FROM checkpoints WHERE document = $1",
                document,
            )
            span = await connection.fetchrow(
                "SELECT max(created_at) AS created_at,"
                " coalesce(array_agg(DISTINCT actor ORDER BY actor) FILTER (WHERE actor IS NOT NULL), '{}')"
                " AS actors FROM updates WHERE document = $1 AND seq > $2 AND seq <= $3",
                document,
                previous["seq"],
                covered,
            )
            created_at = max(v for v in (previous["created_at"], span["created_at"]) if v is not None)
            await connection.execute(
                "INSERT INTO checkpoints (document, seq, snapshot, snapshot_crc, created_at, merged, actors)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                document,
                covered,
                merged,
                checksum(merged),
                created_at,
                len(parts.tail),
                span["actors"],
            )
            await connection.execute(
                "UPDATE updates SET payload = NULL WHERE document = $1 AND seq > $2 AND seq <= $3",
                document,
                previous["seq"],
                covered,
            )
        return CompactionResult(document, covered, len(parts.tail), len(merged))

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        async with self._snapshot() as connection:
            checkpoint_rows = await connection.fetch(
                "SELECT seq, created_at, actors, octet_length(snapshot) AS size FROM checkpoints"
                " WHERE document = $1 ORDER BY seq DESC LIMIT $2",
                document,
                limit,
            )
            update_rows = await connection.fetch(
                "SELECT seq, created_at, actor, update_bytes FROM updates"
                " WHERE document = $1 AND payload IS NOT NULL ORDER BY seq DESC LIMIT $2",
                document,
                limit,
            )
        checkpoints = [VersionInfo(r[0], r[1], list(r[2]), r[3], "checkpoint") for r in checkpoint_rows]
        updates = [VersionInfo(r[0], r[1], [r[2]] if r[2] else [], r[3], "update") for r in update_rows]
        return merge_history(checkpoints, updates, limit)

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        rows = await self._fetch(
            "SELECT seq, created_at, actor, origin_node, update_bytes FROM updates"
            " WHERE document = $1 ORDER BY seq DESC LIMIT $2",
            document,
            limit,
        )
        return [ActivityEntry(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def list_documents(self) -> list[DocumentInfo]:
        rows = await self._fetch(_LIST_DOCUMENTS)
        return [DocumentInfo(r[0], r[1], r[2], r[3]) for r in rows]

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        await self._executemany(
            "INSERT INTO audit (at, action, subject, document, node, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            [(e.at, e.action, e.subject, e.document, e.node, e.detail) for e in events],
        )

    async def audit(
        self, *, document: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        rows = await self._fetch(
            "SELECT at, action, subject, document, node, detail FROM audit"
            " WHERE ($1::text IS NULL OR document = $1) AND ($2::text IS NULL OR subject = $2)"
            " ORDER BY id DESC LIMIT $3",
            document,
            subject,
            limit,
        )
        return [
            AuditEvent(r["at"], r["action"], r["subject"], r["document"], r["node"], r["detail"])
            for r in rows
        ]

    # -- change events ----------------------------------------------------------------------

    async def add_revocation(self, revocation: Revocation) -> None:
        async with self._connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO revocations (token_id, expires_at, revoked_at, revoked_by) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (token_id) DO UPDATE SET expires_at = CASE"
                " WHEN revocations.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL"
                " ELSE greatest(revocations.expires_at, excluded.expires_at) END",
                revocation.token_id,
                revocation.expires_at,
                revocation.revoked_at,
                revocation.revoked_by,
            )
            await connection.execute(
                "DELETE FROM revocations WHERE expires_at IS NOT NULL AND expires_at <= $1",
                revocation.revoked_at,
            )

    async def revocations(self, now: float) -> list[Revocation]:
        rows = await self._fetch(
            "SELECT token_id, expires_at, revoked_at, revoked_by FROM revocations"
            " WHERE expires_at IS NULL OR expires_at > $1",
            now,
        )
        return [Revocation(r["token_id"], r["expires_at"], r["revoked_at"], r["revoked_by"]) for r in rows]

    async def pending_events(self, sink: str, after_seq: int = 0) -> list[PendingDocument]:
        rows = await self._fetch(_PENDING_EVENTS, sink, after_seq)
        return [PendingDocument(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        rows = await self._fetch(
            "SELECT seq, payload, payload_crc, actor, origin_node, created_at FROM updates"
            " WHERE document = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            document,
            after_seq,
            limit,
        )
        return [
            LoggedUpdate(
                r[0],
                None if r[1] is None else verified(document, f"update {r[0]}", r[1], r[2]),
                r[3],
                r[4],
                r[5],
            )
            for r in rows
        ]

    async def event_cursor(self, sink: str, document: str) -> int:
        value = await self._fetchval(
            "SELECT seq FROM event_cursors WHERE sink = $1 AND document = $2", sink, document
        )
        return int(value) if value is not None else 0

    async def advance_event_cursors(self, sink: str, positions: Mapping[str, int]) -> None:
        if not positions:
            return
        now = time.time()
        await self._executemany(
            "INSERT INTO event_cursors (sink, document, seq, published_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (sink, document) DO UPDATE SET seq = excluded.seq,"
            " published_at = excluded.published_at WHERE excluded.seq > event_cursors.seq",
            [(sink, document, seq, now) for document, seq in sorted(positions.items())],
        )

    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = time.time()
        taken = await self._fetchval(
            "INSERT INTO event_leases (name, holder, expires_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            " WHERE event_leases.holder = excluded.holder OR event_leases.expires_at <= $4"
            " RETURNING holder",
            name,
            holder,
            now + ttl_seconds,
            now,
        )
        return taken is not None

    async def release_lease(self, name: str, holder: str) -> None:
        await self._execute("DELETE FROM event_leases WHERE name = $1 AND holder = $2", name, holder)

    async def read_audit(self, after_id: int, limit: int) -> list[AuditRecord]:
        rows = await self._fetch(
            "SELECT id, at, action, subject, document, node, detail FROM audit WHERE id > $1"
            " ORDER BY id LIMIT $2",
            after_id,
            limit,
        )
        return [AuditRecord(r[0], AuditEvent(r[1], r[2], r[3], r[4], r[5], r[6])) for r in rows]

    async def record_deliveries(self, records: Sequence[DeliveryRecord]) -> None:
        if not records:
            return
        await self._executemany(
            "INSERT INTO event_deliveries (sink, event_id, event_type, attempt, at, ok, status,"
            " error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [dataclasses.astuple(r) for r in records],
        )

    async def deliveries(self, sink: str, limit: int = 100) -> list[DeliveryRecord]:
        rows = await self._fetch(
            "SELECT sink, event_id, event_type, attempt, at, ok, status, error, duration_ms"
            " FROM event_deliveries WHERE sink = $1 ORDER BY id DESC LIMIT $2",
            sink,
            limit,
        )
        return [DeliveryRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]

    async def add_dead_letter(self, letter: DeadLetter) -> int:
        letter_id = await self._fetchval(
            "INSERT INTO event_dead_letters (sink, event_id, event_type, document, payload, error,"
            " attempts, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            *dataclasses.astuple(letter)[1:],
        )
        return int(letter_id)

    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        rows = await self._fetch(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM event_dead_letters"
            " WHERE $1::text IS NULL OR sink = $1 ORDER BY id DESC LIMIT $2",
            sink,
            limit,
        )
        return [DeadLetter(*r) for r in rows]

    async def remove_dead_letter(self, letter_id: int) -> DeadLetter | None:
        row = await self._fetchrow(
            f"DELETE FROM event_dead_letters WHERE id = $1 RETURNING {_DEAD_LETTER_COLUMNS}", letter_id
        )
        return DeadLetter(*row) if row is not None else None

    # -- data lifecycle ---------------------------------------------------------------

    async def data_key(self, document: str) -> WrappedDataKey | None:
        row = await self._fetchrow(_SELECT_KEY + " WHERE document = $1", document)
        return WrappedDataKey(*row) if row else None

    async def add_data_key(self, key: WrappedDataKey) -> WrappedDataKey:
        async with self._connection() as connection:
            await connection.execute(
                "INSERT INTO data_keys (document, key_id, master_key_id, wrapped, created_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (document) DO NOTHING",
                key.document,
                key.key_id,
                key.master_key_id,
                key.wrapped,
                key.created_at,
            )
            row = await connection.fetchrow(_SELECT_KEY + " WHERE document = $1", key.document)
        return WrappedDataKey(*row)

    async def data_keys(self) -> list[WrappedDataKey]:
        rows = await self._fetch(_SELECT_KEY + ' ORDER BY document COLLATE "C"')
        return [WrappedDataKey(*row) for row in rows]

    async def rewrap_data_key(self, old: WrappedDataKey, new: WrappedDataKey) -> bool:
        status = await self._execute(
            "UPDATE data_keys SET master_key_id = $1, wrapped = $2"
            " WHERE document = $3 AND master_key_id = $4 AND wrapped = $5",
            new.master_key_id,
            new.wrapped,
            old.document,
            old.master_key_id,
            old.wrapped,
        )
        return bool(status == "UPDATE 1")

    async def mark_deleted(self, deleted: DeletedDocument) -> bool:
        status = await self._execute(
            "INSERT INTO deleted_documents (document, deleted_at, deleted_by, purge_after)"
            " SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM updates WHERE document = $1)"
            " ON CONFLICT (document) DO NOTHING",
            deleted.name,
            deleted.deleted_at,
            deleted.deleted_by,
            deleted.purge_after,
        )
        return bool(status == "INSERT 0 1")

    async def undelete(self, document: str) -> bool:
        status = await self._execute("DELETE FROM deleted_documents WHERE document = $1", document)
        return bool(status == "DELETE 1")

    async def deleted_documents(self) -> list[DeletedDocument]:
        rows = await self._fetch(
            "SELECT document, deleted_at, deleted_by, purge_after FROM deleted_documents"
            ' ORDER BY document COLLATE "C"'
        )
        return [DeletedDocument(*row) for row in rows]

    async def erase(self, document: str) -> int:
        removed = 0
        async with self._connection() as connection:
            async with connection.transaction():
                # Waits for a running append or compaction of the document to finish first.
                for namespace in (APPEND_LOCK_NAMESPACE, COMPACT_LOCK_NAMESPACE):
                    await connection.execute(
                        "SELECT pg_advisory_xact_lock($1, $2)", namespace, lock_key(document)
                    )
                for table in ("updates", "checkpoints", "data_keys", "deleted_documents", "tiered_documents"):
                    status = await connection.execute(f"DELETE FROM {table} WHERE document = $1", document)
                    removed += int(status.rsplit(" ", 1)[1])
            # Dead tuples keep their bytes until VACUUM reclaims the pages; do it now rather
            # than whenever autovacuum comes by. (WAL segments still hold them until recycled:
            # with encryption on they are ciphertext whose data key is gone.)
            for table in ("updates", "checkpoints", "data_keys"):
                await connection.execute(f"VACUUM {table}")
        return removed

    async def prune_checkpoints(self, document: str, before: float) -> int:
        status = await self._execute(
            "DELETE FROM checkpoints WHERE document = $1 AND created_at < $2"
            " AND seq < (SELECT max(seq) FROM checkpoints WHERE document = $1)",
            document,
            before,
        )
        return int(status.rsplit(" ", 1)[1])

    async def tier_out(self, tiered: TieredDocument) -> bool:
        async with self._connection() as connection, connection.transaction():
            for namespace in (APPEND_LOCK_NAMESPACE, COMPACT_LOCK_NAMESPACE):
                await connection.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)", namespace, lock_key(tiered.name)
                )
            newest = await connection.fetchval(
                "SELECT max(seq) FROM updates WHERE document = $1", tiered.name
            )
            if newest != tiered.last_seq:
                return False
            for table in ("updates", "checkpoints", "data_keys"):
                await connection.execute(f"DELETE FROM {table} WHERE document = $1", tiered.name)
            await connection.execute(
                "INSERT INTO tiered_documents (document, last_seq, updated_at, tiered_at) VALUES ($1, $2, $3, $4)",
                tiered.name,
                tiered.last_seq,
                tiered.updated_at,
                tiered.tiered_at,
            )
        return True

    async def untier(self, document: str) -> None:
        await self._execute("DELETE FROM tiered_documents WHERE document = $1", document)

    async def tiered_documents(self) -> list[TieredDocument]:
        rows = await self._fetch(
            'SELECT document, last_seq, updated_at, tiered_at FROM tiered_documents ORDER BY document COLLATE "C"'
        )
        return [TieredDocument(*row) for row in rows]

    async def export_document(self, document: str) -> DocumentExport:
        async with self._snapshot() as connection:
            update_rows = await connection.fetch(
                "SELECT seq, payload, update_bytes, actor, origin_node, created_at FROM updates"
                " WHERE document = $1 ORDER BY seq",
                document,
            )
            checkpoint_rows = await connection.fetch(
                "SELECT seq, snapshot, created_at, merged, actors FROM checkpoints"
                " WHERE document = $1 ORDER BY seq",
                document,
            )
            key = await connection.fetchrow(_SELECT_KEY + " WHERE document = $1", document)
        return DocumentExport(
            document,
            [ExportedUpdate(*row) for row in update_rows],
            [ExportedCheckpoint(r[0], r[1], r[2], r[3], list(r[4])) for r in checkpoint_rows],
            WrappedDataKey(*key) if key else None,
        )

    async def import_document(self, export: DocumentExport) -> None:
        async with self._connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock($1, $2)", APPEND_LOCK_NAMESPACE, lock_key(export.document)
            )
            if await connection.fetchval("SELECT 1 FROM updates WHERE document = $1", export.document):
                raise ValueError(f"document {export.document!r} already has rows")
            await connection.executemany(
                "INSERT INTO updates (seq, document, payload, payload_crc, update_bytes, actor,"
                " origin_node, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                log_rows(export),
            )
            await connection.executemany(
                "INSERT INTO checkpoints (document, seq, snapshot, snapshot_crc, created_at, merged, actors)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (
                        export.document,
                        c.seq,
                        c.snapshot,
                        checksum(c.snapshot),
                        c.created_at,
                        c.merged,
                        list(c.actors),
                    )
                    for c in export.checkpoints
                ],
            )
            if export.data_key is not None:
                k = export.data_key
                await connection.execute(
                    "INSERT INTO data_keys (document, key_id, master_key_id, wrapped, created_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (document) DO UPDATE"
                    " SET key_id = $2, master_key_id = $3, wrapped = $4, created_at = $5",
                    k.document,
                    k.key_id,
                    k.master_key_id,
                    k.wrapped,
                    k.created_at,
                )
            # Explicit seqs do not move the sequence: keep it ahead of every restored row.
            await connection.execute(
                "SELECT setval(pg_get_serial_sequence('updates', 'seq'),"
                " greatest((SELECT max(seq) FROM updates), (SELECT last_value FROM updates_seq_seq)))"
            )


_SELECT_KEY = "SELECT document, key_id, master_key_id, wrapped, created_at FROM data_keys"
