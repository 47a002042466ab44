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
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]

from persistence._records import checksum, merge_history, verified
from persistence.base import (
    ActivityEntry,
    AuditEvent,
    CompactionResult,
    CorruptDocument,
    DocumentInfo,
    LogEntry,
    MergeFunction,
    Revocation,
    StoredDocument,
    StoreUnavailable,
    UnknownVersion,
    VersionInfo,
)
from persistence.migrations import load_migrations

logger = logging.getLogger(__name__)

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
ORDER BY l.document COLLATE "C"
"""

_MAX_SEQ = 2**63 - 1


def lock_key(document: str) -> int:
    """A stable signed 32-bit key for a document name (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(document.encode(), digest_size=4).digest(), "big", signed=True)


def describe_dsn(dsn: str) -> str:
    """Host, port, database and user of a DSN, for messages; never the password."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["localhost"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
        user = unquote(parts.username) if parts.username else query.get("user", ["(default user)"])[0]
        database = unquote(parts.path.lstrip("/")) or query.get("dbname", [user])[0]
    except ValueError:
        return "PostgreSQL (unparsable DSN)"
    return f"PostgreSQL at {host}:{port} database {database!r} user {user!r}"


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
        self._target = describe_dsn(dsn)
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
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

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

    async def _migrate(self) -> None:
        migrations = load_migrations("postgres")
        async with self._connection() as connection, connection.transaction():
            # Two nodes starting at once: the second waits here, then finds nothing to do.
            await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            if current > len(migrations):
                raise StoreUnavailable(
                    f"{self._target} has schema version {current},"
                    f" newer than this program's {len(migrations)}"
                )
            for migration in migrations[current:]:
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                logger.info("%s: applied migration %03d_%s", self._target, migration.version, migration.name)

    # -- the Store port -------------------------------------------------------------------

    async def ping(self) -> None:
        async with self._connection() as connection:
            await connection.fetchval("SELECT 1", timeout=self._connect_timeout)

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
        async with self._connection() as connection:
            rows = await connection.fetch(_APPEND, *columns, APPEND_LOCK_NAMESPACE, keys)
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
        async with (
            self._connection() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            exists = await connection.fetchval(
                "SELECT 1 FROM updates WHERE document = $1 AND seq = $2", document, seq
            )
            if exists is None:
                raise UnknownVersion(f"{document!r} has no version {seq}")
            return await self._parts(connection, document, seq)

    async def compact(self, document: str, merge: MergeFunction) -> CompactionResult | None:
        async with self._connection() as connection, connection.transaction():
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, $2)", COMPACT_LOCK_NAMESPACE, lock_key(document)
            )
            if not locked:
                return None
            parts = await self._parts(connection, document, None)
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
        async with (
            self._connection() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
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
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT seq, created_at, actor, origin_node, update_bytes FROM updates"
                " WHERE document = $1 ORDER BY seq DESC LIMIT $2",
                document,
                limit,
            )
        return [ActivityEntry(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def list_documents(self) -> list[DocumentInfo]:
        async with self._connection() as connection:
            rows = await connection.fetch(_LIST_DOCUMENTS)
        return [DocumentInfo(r[0], r[1], r[2], r[3]) for r in rows]

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self._connection() as connection:
            await connection.executemany(
                "INSERT INTO audit (at, action, subject, document, node, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                [(e.at, e.action, e.subject, e.document, e.node, e.detail) for e in events],
            )

    async def audit(
        self, *, document: str | None = None, subject: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        async with self._connection() as connection:
            rows = await connection.fetch(
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
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT token_id, expires_at, revoked_at, revoked_by FROM revocations"
                " WHERE expires_at IS NULL OR expires_at > $1",
                now,
            )
        return [Revocation(r["token_id"], r["expires_at"], r["revoked_at"], r["revoked_by"]) for r in rows]
