"""The Store contract: one suite run over every adapter (memory, SQLite, PostgreSQL).

PostgreSQL runs against a real throwaway server (tests/support). Two instances of an
adapter on one database stand for two hub processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pycrdt
import pytest

import crdt_core
from persistence.base import (
    AuditEvent,
    CorruptDocument,
    DeletedDocument,
    LogEntry,
    Store,
    StoredDocument,
    StoreUnavailable,
    TieredDocument,
    UnknownVersion,
    WrappedDataKey,
)
from persistence.encryption.keys import StaticKeyProvider, new_key_entry
from persistence.encryption.store import EncryptedStore
from persistence.factory import store_from_url
from persistence.memory import MemoryStore
from persistence.migrations import load_migrations
from persistence.postgres import APPEND_LOCK_NAMESPACE, PostgresStore, lock_key
from persistence.sqlite import SqliteStore
from tests.fast.peers import typed
from tests.support.services import PostgresServer, free_port

TEXT = "content"
Doc = pycrdt.Doc[Any]
DEADLINE = 20.0  # seconds any single wait in these tests may take


# -- helpers -------------------------------------------------------------------------------


def text_of(stored: StoredDocument) -> str:
    doc: Doc = pycrdt.Doc()
    text = doc.get(TEXT, type=pycrdt.Text)
    if stored.snapshot is not None:
        doc.apply_update(stored.snapshot)
    for update in stored.tail:
        doc.apply_update(update)
    return str(text)


def entry(document: str, update: bytes, actor: str | None = "alice", node: str = "node-a") -> LogEntry:
    return LogEntry(document, update, actor, node, time.time())


@dataclass
class Backend:
    """One adapter on one database; ``make`` gives another "process" on the same data."""

    kind: str
    make: Callable[[], Store]
    sqlite_path: Path | None = None
    postgres_dsn: str | None = None

    async def corrupt_snapshot(self, document: str) -> None:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as db:
                db.execute(
                    "UPDATE checkpoints SET snapshot = ? WHERE document = ?", (b"\x07garbage", document)
                )
        elif self.postgres_dsn is not None:
            connection = await asyncpg.connect(self.postgres_dsn)
            try:
                await connection.execute(
                    "UPDATE checkpoints SET snapshot = $1 WHERE document = $2", b"\x07garbage", document
                )
            finally:
                await connection.close()
        else:
            raise AssertionError(f"{self.kind} has no rows to corrupt")


CONTRACT_KEYS = StaticKeyProvider(new_key_entry("contract"))


# The in-process adapters join the fast tier (`scripts/test.sh --fast`); PostgreSQL needs its server.
IN_PROCESS = pytest.mark.fast


@pytest.fixture(
    params=[
        pytest.param("memory", marks=IN_PROCESS),
        pytest.param("sqlite", marks=IN_PROCESS),
        "postgres",
        pytest.param("memory+encrypted", marks=IN_PROCESS),
        pytest.param("sqlite+encrypted", marks=IN_PROCESS),
        "postgres+encrypted",
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every adapter, bare and under the envelope-encryption layer (persistence/encryption)."""
    kind, _, encrypted = str(request.param).partition("+")
    plain = _plain_backend(kind, request, tmp_path)
    if not encrypted:
        return plain
    make = plain.make
    return Backend(
        request.param,
        lambda: EncryptedStore(make(), CONTRACT_KEYS),
        sqlite_path=plain.sqlite_path,
        postgres_dsn=plain.postgres_dsn,
    )


def _plain_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "memory":
        shared = MemoryStore()  # one process only: every "instance" is the same store
        return Backend("memory", lambda: shared)
    if kind == "sqlite":
        path = tmp_path / "store.db"
        return Backend("sqlite", lambda: SqliteStore(path), sqlite_path=path)
    dsn: str = request.getfixturevalue("postgres_dsn")
    return Backend("postgres", lambda: PostgresStore(dsn), postgres_dsn=dsn)


@asynccontextmanager
async def opened(backend: Backend) -> AsyncIterator[Store]:
    store = backend.make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    async with opened(backend) as store:
        yield store


# -- the contract --------------------------------------------------------------------------


async def test_round_trip_with_real_updates(store: Store) -> None:
    updates, doc = typed(["Hello", ", ", "world", "!"])
    seqs = [(await store.append([entry("doc", update)]))[0] for update in updates[:2]]
    seqs += await store.append([entry("doc", update) for update in updates[2:]])
    loaded = await store.load("doc")
    assert loaded.snapshot is None
    assert list(loaded.tail) == updates
    assert loaded.last_seq == seqs[-1]
    assert text_of(loaded) == str(doc.get(TEXT, type=pycrdt.Text)) == "Hello, world!"


async def test_seqs_strictly_increase_across_batches_and_documents(store: Store) -> None:
    a, _ = typed(["a"] * 5)
    b, _ = typed(["b"] * 5)
    seqs: list[int] = []
    for i in range(5):
        seqs += await store.append([entry("a", a[i]), entry("b", b[i])])
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert await store.append([]) == []


async def test_unknown_document_loads_empty(store: Store) -> None:
    loaded = await store.load("nothing-here")
    assert loaded.is_empty
    assert loaded.last_seq == 0
    assert await store.history("nothing-here") == []
    assert await store.activity("nothing-here") == []


async def test_load_equals_applying_every_update(store: Store) -> None:
    doc: Doc = pycrdt.Doc()
    expected: list[bytes] = []
    for round_ in range(10):
        updates, doc = typed([f"{round_}:" + "x" * round_], doc)
        expected += updates
        await store.append([entry("doc", update) for update in updates])
    loaded = await store.load("doc")
    assert text_of(loaded) == str(doc.get(TEXT, type=pycrdt.Text))
    assert crdt_core.merge_updates(list(loaded.tail)) == crdt_core.merge_updates(expected)


async def test_compaction_keeps_content_and_records_a_checkpoint(store: Store) -> None:
    updates, doc = typed(["one ", "two ", "three"])
    seqs = await store.append([entry("doc", update) for update in updates])
    result = await store.compact("doc", crdt_core.merge_updates)
    assert result is not None
    assert (result.document, result.covered_seq, result.merged_entries) == ("doc", seqs[-1], 3)
    loaded = await store.load("doc")
    assert loaded.snapshot is not None
    assert result.snapshot_bytes == len(loaded.snapshot)
    assert list(loaded.tail) == []
    assert loaded.last_seq == seqs[-1]
    assert text_of(loaded) == "one two three" == str(doc.get(TEXT, type=pycrdt.Text))
    history = await store.history("doc")
    assert [(v.seq, v.kind) for v in history] == [(seqs[-1], "checkpoint")]
    assert await store.compact("doc", crdt_core.merge_updates) is None  # nothing new to merge

    more, doc = typed([" four"], doc)
    more_seqs = await store.append([entry("doc", update) for update in more])
    second = await store.compact("doc", crdt_core.merge_updates)
    assert second is not None and second.covered_seq == more_seqs[-1]
    assert text_of(await store.load("doc")) == "one two three four"
    assert [v.kind for v in await store.history("doc")] == ["checkpoint", "checkpoint"]


async def test_entries_appended_during_compaction_stay_in_the_tail(store: Store) -> None:
    updates, doc = typed(["before "] * 3)
    await store.append([entry("doc", update) for update in updates])
    merging, appended = threading.Event(), threading.Event()

    def slow_merge(parts: Sequence[bytes]) -> bytes:
        merging.set()
        assert appended.wait(DEADLINE)
        return crdt_core.merge_updates(parts)

    compaction = asyncio.create_task(store.compact("doc", slow_merge))
    assert await asyncio.to_thread(merging.wait, DEADLINE)
    late, doc = typed(["after"], doc)
    late_seqs = await store.append([entry("doc", update) for update in late])
    appended.set()
    result = await asyncio.wait_for(compaction, DEADLINE)
    assert result is not None and result.covered_seq < late_seqs[0]
    loaded = await store.load("doc")
    assert loaded.snapshot is not None
    assert list(loaded.tail) == late
    assert loaded.last_seq == late_seqs[-1]
    assert text_of(loaded) == "before before before after"


async def test_concurrent_compactions_of_one_document_run_one_at_a_time(backend: Backend) -> None:
    async with opened(backend) as first, opened(backend) as second:
        updates, doc = typed(["a", "b", "c"])
        await first.append([entry("doc", update) for update in updates])
        merging, release = threading.Event(), threading.Event()

        def held_merge(parts: Sequence[bytes]) -> bytes:
            merging.set()
            assert release.wait(DEADLINE)
            return crdt_core.merge_updates(parts)

        def must_not_run(parts: Sequence[bytes]) -> bytes:
            raise AssertionError("a second compaction ran while the first held the document")

        running = asyncio.create_task(first.compact("doc", held_merge))
        try:
            assert await asyncio.to_thread(merging.wait, DEADLINE)
            assert await asyncio.wait_for(second.compact("doc", must_not_run), DEADLINE) is None
        finally:
            release.set()
        result = await asyncio.wait_for(running, DEADLINE)
        assert result is not None and result.merged_entries == 3
        # Other documents are not blocked by it, and the lock is free again afterwards.
        other, _ = typed(["x"])
        await second.append([entry("other", update) for update in other])
        more, doc = typed(["d"], doc)
        await second.append([entry("doc", update) for update in more])
        assert await second.compact("doc", crdt_core.merge_updates) is not None
        assert text_of(await first.load("doc")) == "abcd"


async def test_history_versions_and_attribution(store: Store) -> None:
    doc: Doc = pycrdt.Doc()
    seqs, texts = [], []
    for i, (actor, node) in enumerate([("alice", "node-a"), ("agent:bot", "node-b"), (None, "node-a")]):
        updates, doc = typed([f"[{i}]"], doc)
        seqs += await store.append([entry("doc", updates[0], actor, node)])
        texts.append(str(doc.get(TEXT, type=pycrdt.Text)))

    history = await store.history("doc")
    assert [(v.seq, v.kind, list(v.actors)) for v in history] == [
        (seqs[2], "update", []),
        (seqs[1], "update", ["agent:bot"]),
        (seqs[0], "update", ["alice"]),
    ]
    assert all(v.update_bytes > 0 for v in history)
    assert [v.seq for v in await store.history("doc", limit=2)] == [seqs[2], seqs[1]]
    for seq, expected in zip(seqs, texts, strict=True):
        assert text_of(await store.read_version("doc", seq)) == expected

    activity = await store.activity("doc")
    assert [(a.seq, a.actor, a.origin_node) for a in activity] == [
        (seqs[2], None, "node-a"),
        (seqs[1], "agent:bot", "node-b"),
        (seqs[0], "alice", "node-a"),
    ]

    with pytest.raises(UnknownVersion):
        await store.read_version("doc", seqs[-1] + 1000)
    with pytest.raises(UnknownVersion):
        await store.read_version("another-doc", seqs[0])


async def test_history_survives_compaction(store: Store) -> None:
    doc: Doc = pycrdt.Doc()
    seqs = []
    for actor in ["alice", "bob", "alice"]:
        updates, doc = typed([actor[0]], doc)
        seqs += await store.append([entry("doc", updates[0], actor)])
    result = await store.compact("doc", crdt_core.merge_updates)
    assert result is not None
    tail, doc = typed(["!"], doc)
    tail_seq = (await store.append([entry("doc", tail[0], "carol", "node-c")]))[0]

    history = await store.history("doc")
    assert [(v.seq, v.kind, sorted(v.actors)) for v in history] == [
        (tail_seq, "update", ["carol"]),
        (seqs[-1], "checkpoint", ["alice", "bob"]),
    ]
    assert text_of(await store.read_version("doc", seqs[-1])) == "aba"  # the checkpoint itself
    assert text_of(await store.read_version("doc", tail_seq)) == "aba!"
    with pytest.raises(UnknownVersion):
        await store.read_version("doc", seqs[0])  # merged into the checkpoint: no longer readable alone
    activity = await store.activity("doc")
    assert [(a.seq, a.actor) for a in activity] == [
        (tail_seq, "carol"),
        (seqs[2], "alice"),
        (seqs[1], "bob"),
        (seqs[0], "alice"),
    ]
    assert all(a.update_bytes > 0 for a in activity)


async def test_list_documents(store: Store) -> None:
    assert await store.list_documents() == []
    a, _ = typed(["1", "2"])
    b, _ = typed(["3"])
    seqs = await store.append([entry("b", b[0]), entry("a", a[0]), entry("a", a[1])])
    infos = await store.list_documents()
    assert [(i.name, i.last_seq, i.log_entries) for i in infos] == [("a", seqs[2], 2), ("b", seqs[0], 1)]
    assert all(abs(i.updated_at - time.time()) < 60 for i in infos)
    await store.compact("a", crdt_core.merge_updates)
    infos = await store.list_documents()
    assert [(i.name, i.last_seq, i.log_entries) for i in infos] == [("a", seqs[2], 0), ("b", seqs[0], 1)]


async def test_corrupt_row_fails_only_its_document(backend: Backend, store: Store) -> None:
    if backend.kind.startswith("memory"):
        pytest.skip("the memory store has no stored rows that could be damaged")
    bad, _ = typed(["bad"])
    good, _ = typed(["good"])
    await store.append([entry("bad", bad[0]), entry("good", good[0])])
    await store.compact("bad", crdt_core.merge_updates)
    await store.compact("good", crdt_core.merge_updates)
    await backend.corrupt_snapshot("bad")
    with pytest.raises(CorruptDocument, match="bad"):
        await store.load("bad")
    assert text_of(await store.load("good")) == "good"
    more, _ = typed(["more"])
    await store.append([entry("good", more[0])])  # the store keeps working
    assert (await store.list_documents())[1].name == "good"


async def test_cancelled_compaction_frees_the_document(store: Store) -> None:
    updates, _ = typed(["a", "b"])
    await store.append([entry("doc", update) for update in updates])
    merging, release = threading.Event(), threading.Event()

    def held_merge(parts: Sequence[bytes]) -> bytes:
        merging.set()
        release.wait(DEADLINE)
        return crdt_core.merge_updates(parts)

    task = asyncio.create_task(store.compact("doc", held_merge))
    assert await asyncio.to_thread(merging.wait, DEADLINE)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert (await store.load("doc")).snapshot is None  # nothing half-written
    assert await store.compact("doc", crdt_core.merge_updates) is not None  # lock / lease free again
    assert text_of(await store.load("doc")) == "ab"


async def test_cancelled_append_is_all_or_nothing(store: Store) -> None:
    updates, _ = typed(["x"] * 2000)
    task = asyncio.create_task(store.append([entry("bulk", update) for update in updates]))
    await asyncio.sleep(0)  # let it start
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len((await store.load("bulk")).tail) in (0, len(updates))
    seqs = await store.append([entry("after", updates[0])])  # the store keeps working
    assert (await store.load("after")).last_seq == seqs[0]


async def test_data_survives_reopening(backend: Backend) -> None:
    updates, _ = typed(["kept"])
    async with opened(backend) as first:
        seqs = await first.append([entry("doc", updates[0])])
    async with opened(backend) as second:  # migrations run again: nothing to do, nothing lost
        loaded = await second.load("doc")
        assert loaded.last_seq == seqs[0]
        assert text_of(loaded) == "kept"
        assert (await second.append([entry("doc", updates[0])]))[0] > seqs[0]


async def test_closed_store_is_unavailable(backend: Backend) -> None:
    if backend.kind.startswith("memory"):
        pytest.skip("the memory store has nothing to close")
    store = backend.make()
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


# -- adapter-specific: SQLite ----------------------------------------------------------------


@pytest.mark.fast
async def test_sqlite_records_its_schema_version_and_runs_in_wal_mode(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db"):
        pass
    with sqlite3.connect(tmp_path / "s.db") as db:
        applied = db.execute("SELECT version, name FROM schema_version").fetchall()
        assert applied == [(m.version, m.name) for m in load_migrations("sqlite")]
        assert applied[:2] == [(1, "initial"), (2, "audit")] and (5, "data_lifecycle") in applied
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.fast
async def test_sqlite_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "missing-dir" / "s.db")
    with pytest.raises(StoreUnavailable, match="missing-dir"):
        await store.open()


@pytest.mark.fast
async def test_sqlite_compaction_lease_of_a_crashed_holder_expires(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        updates, _ = typed(["x"])
        await store.append([entry("doc", updates[0])])
        with sqlite3.connect(path) as db:
            db.execute("INSERT INTO compaction_leases VALUES ('doc', 'crashed', ?)", (time.time() + 3600,))
        assert await store.compact("doc", crdt_core.merge_updates) is None  # still held
        with sqlite3.connect(path) as db:
            db.execute("UPDATE compaction_leases SET expires_at = ?", (time.time() - 1,))
        assert await store.compact("doc", crdt_core.merge_updates) is not None  # expired: taken over
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM compaction_leases").fetchone()[0] == 0


# -- adapter-specific: PostgreSQL -------------------------------------------------------------


async def test_postgres_unreachable_is_unavailable_fast_without_the_password() -> None:
    port = free_port()
    store = PostgresStore(f"postgresql://nova:Sup3r-Secret@127.0.0.1:{port}/novadb", connect_timeout=3.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert time.monotonic() - started < 5.0
    message = str(caught.value)
    assert "127.0.0.1" in message and str(port) in message and "novadb" in message
    assert "Sup3r-Secret" not in message and "Sup3r-Secret" not in repr(store)


async def test_postgres_wrong_password_or_database_is_unavailable(postgres_server: PostgresServer) -> None:
    wrong_password = postgres_server.dsn.replace(postgres_server.password, "Wrong-Pw-123")
    with pytest.raises(StoreUnavailable) as caught:
        await PostgresStore(wrong_password).open()
    assert "Wrong-Pw-123" not in str(caught.value) and postgres_server.password not in str(caught.value)
    with pytest.raises(StoreUnavailable, match="no_such_db") as caught:
        await PostgresStore(postgres_server.dsn_for("no_such_db")).open()
    assert postgres_server.password not in str(caught.value)


async def test_postgres_migrations_are_versioned(postgres_dsn: str) -> None:
    first, second = PostgresStore(postgres_dsn), PostgresStore(postgres_dsn)
    await asyncio.gather(first.open(), second.open())  # two nodes starting at once
    try:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            rows = await connection.fetch("SELECT version, name FROM schema_version ORDER BY version")
        finally:
            await connection.close()
        applied = [(row["version"], row["name"]) for row in rows]
        assert applied == [(m.version, m.name) for m in load_migrations("postgres")]
        assert applied[:2] == [(1, "initial"), (2, "audit")] and (5, "data_lifecycle") in applied
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_postgres_appends_of_a_document_draw_seqs_in_commit_order(postgres_dsn: str) -> None:
    """The document lock is taken before a seq is drawn: what compaction's prefix rule relies on."""
    updates, _ = typed(["a", "b", "c"])
    async with PostgresStore(postgres_dsn) as store:
        await store.append([entry("doc", updates[0])])
        blocker = await asyncpg.connect(postgres_dsn)
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute(
                "SELECT pg_advisory_xact_lock($1, $2)", APPEND_LOCK_NAMESPACE, lock_key("doc")
            )
            pending = asyncio.create_task(store.append([entry("doc", updates[1])]))

            async def append_waits_for_the_lock() -> bool:
                return bool(await blocker.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))

            await poll_until(append_waits_for_the_lock)
            other = await store.append([entry("other", updates[2])])
            await transaction.rollback()
            assert (await asyncio.wait_for(pending, DEADLINE))[0] > other[0]
        finally:
            await blocker.close()


async def poll_until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)  # polling interval under a deadline


async def wait_until_available(store: Store) -> None:
    async def answers() -> bool:
        try:
            await store.ping()
        except StoreUnavailable:
            return False
        return True

    await poll_until(answers)


async def test_postgres_store_recovers_from_a_database_restart() -> None:
    with PostgresServer() as server:
        store = PostgresStore(server.dsn, connect_timeout=2.0)
        await store.open()
        try:
            doc: Doc = pycrdt.Doc()
            updates, doc = typed(["before"], doc)
            await store.append([entry("doc", updates[0])])

            await server.astop()
            with pytest.raises(StoreUnavailable):
                await store.ping()
            lost, _ = typed(["x"])
            with pytest.raises(StoreUnavailable):
                await store.append([entry("doc", lost[0])])

            await server.astart()
            await wait_until_available(store)
            after, doc = typed([" after"], doc)
            await store.append([entry("doc", after[0])])
            assert text_of(await store.load("doc")) == "before after"

            await server.akill()  # a crash this time: committed data must survive recovery
            await server.astart()
            await wait_until_available(store)
            assert text_of(await store.load("doc")) == "before after"
        finally:
            await store.close()


# -- choosing an adapter -----------------------------------------------------------------------


@pytest.mark.fast
def test_store_from_url(tmp_path: Path) -> None:
    assert isinstance(store_from_url("memory"), MemoryStore)
    assert isinstance(store_from_url("memory://"), MemoryStore)
    relative = store_from_url("sqlite:///data/nova.db")
    assert isinstance(relative, SqliteStore) and relative.path == "data/nova.db"
    absolute = store_from_url(f"sqlite:///{tmp_path}/nova.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == f"{tmp_path}/nova.db"
    plain = store_from_url("nova.sqlite3")
    assert isinstance(plain, SqliteStore) and plain.path == "nova.sqlite3"
    assert isinstance(store_from_url("postgresql://u:p@localhost/db"), PostgresStore)
    assert isinstance(store_from_url("postgres://u:p@localhost/db"), PostgresStore)
    for bad in ["mysql://user:Hidden-Pw@host/db", "sqlite://", "", "redis://localhost"]:
        with pytest.raises(ValueError, match="store") as caught:
            store_from_url(bad)
        assert "Hidden-Pw" not in str(caught.value)


async def test_audit_events_round_trip_and_filter(store: Store) -> None:
    from persistence.base import AuditEvent

    events = [
        AuditEvent(1.0, "connect", "alice", "doc-a", "node-1", "role=write"),
        AuditEvent(2.0, "denied", "mallory", "doc-a", "node-1", "no grant"),
        AuditEvent(3.0, "connect", "alice", "doc-b", "node-2"),
    ]
    await store.append_audit(events)
    assert [e.action for e in await store.audit(document="doc-a")] == ["denied", "connect"]
    assert [e.document for e in await store.audit(subject="alice")] == ["doc-b", "doc-a"]
    assert await store.audit(subject="alice", document="doc-b") == [events[2]]
    assert len(await store.audit(limit=2)) == 2


# -- data lifecycle: data keys, soft delete, erase, export/import ---------------------------


async def test_data_keys_first_writer_wins_and_rewrap_is_compare_and_set(store: Store) -> None:
    first = WrappedDataKey("doc", "aa" * 8, "k1", b"wrapped-1", 1.0)
    assert await store.data_key("doc") is None
    assert await store.add_data_key(first) == first
    assert await store.add_data_key(WrappedDataKey("doc", "bb" * 8, "k1", b"other", 2.0)) == first
    moved = WrappedDataKey("doc", first.key_id, "k2", b"wrapped-2", 1.0)
    assert await store.rewrap_data_key(first, moved)
    assert not await store.rewrap_data_key(first, moved)  # no longer `first`
    assert await store.data_keys() == [moved]


async def test_soft_delete_hides_and_undelete_restores(store: Store) -> None:
    updates, _ = typed(["kept"])
    await store.append([entry("gone", u) for u in updates] + [entry("kept", u) for u in updates])
    mark = DeletedDocument("gone", time.time(), "alice", time.time() + 60)
    assert not await store.mark_deleted(DeletedDocument("never-written", 1.0, None, 2.0))
    assert await store.mark_deleted(mark)
    assert not await store.mark_deleted(mark)  # already deleted
    assert [info.name for info in await store.list_documents()] == ["kept"]
    assert await store.deleted_documents() == [mark]
    assert text_of(await store.load("gone")) == "kept"  # rows stay until erased
    assert await store.undelete("gone")
    assert not await store.undelete("gone")
    assert [info.name for info in await store.list_documents()] == ["gone", "kept"]


async def test_erase_removes_every_row_but_keeps_the_audit(store: Store) -> None:
    updates, _ = typed(["one ", "two ", "three"])
    await store.append([entry("doc", u) for u in updates])
    await store.compact("doc", crdt_core.merge_updates)
    await store.append([entry("doc", typed(["more"])[0][0]), entry("other", updates[0])])
    await store.add_data_key(WrappedDataKey("doc", "aa" * 8, "k1", b"w", 1.0))
    await store.mark_deleted(DeletedDocument("doc", 1.0, None, 2.0))
    await store.append_audit([AuditEvent(time.time(), "erase", "ops", "doc", "n")])
    assert await store.erase("doc") >= 6
    assert (await store.load("doc")).is_empty
    assert await store.history("doc") == [] and await store.activity("doc") == []
    assert await store.data_key("doc") is None and await store.deleted_documents() == []
    assert [info.name for info in await store.list_documents()] == ["other"]
    assert [event.action for event in await store.audit(document="doc")] == ["erase"]


async def test_export_then_import_into_an_empty_store_is_equal(backend: Backend, tmp_path: Path) -> None:
    async with opened(backend) as store:
        updates, _ = typed(["alpha ", "beta ", "gamma "])
        await store.append([entry("doc", u, actor="ann") for u in updates])
        await store.compact("doc", crdt_core.merge_updates)
        await store.append([entry("doc", typed(["delta"])[0][0], actor="bob")])
        exported = await store.export_document("doc")
        history, activity = await store.history("doc"), await store.activity("doc")
        versions = {v.seq: text_of(await store.read_version("doc", v.seq)) for v in history}
    target = SqliteStore(tmp_path / "restored.db")
    restored: Store = target if exported.data_key is None else EncryptedStore(target, CONTRACT_KEYS)
    async with contextlib.AsyncExitStack() as stack:
        await restored.open()  # empty: an encrypted store's key check passes
        stack.push_async_callback(restored.close)
        await restored.import_document(exported)
        assert await restored.export_document("doc") == exported
        assert await restored.history("doc") == history
        assert await restored.activity("doc") == activity
        for seq, text in versions.items():
            assert text_of(await restored.read_version("doc", seq)) == text
        with pytest.raises(ValueError, match="already has rows"):
            await restored.import_document(exported)
        (seq,) = await restored.append([entry("doc", typed(["!"])[0][0])])
        assert seq > exported.last_seq  # the counter moved past the restored seqs


async def test_revocations_last_until_the_token_expiry_and_survive_reopening(backend: Backend) -> None:
    from persistence.base import Revocation

    async with opened(backend) as store:
        await store.add_revocation(Revocation("short", 100.0, 10.0, "root"))
        await store.add_revocation(Revocation("long", 1_000.0, 10.0, "root"))
        await store.add_revocation(Revocation("unknown-expiry", None, 10.0))
        # A second revocation of one token keeps the longer lifetime.
        await store.add_revocation(Revocation("long", 500.0, 20.0, "ops"))
    async with opened(backend) as store:
        in_force = {r.token_id: r.expires_at for r in await store.revocations(50.0)}
        assert in_force == {"short": 100.0, "long": 1_000.0, "unknown-expiry": None}
        later = {r.token_id for r in await store.revocations(200.0)}
        assert later == {"long", "unknown-expiry"}
        # Records whose token has expired are dropped when the next revocation is written.
        await store.add_revocation(Revocation("newer", None, 2_000.0))
        assert {r.token_id for r in await store.revocations(0.0)} == {"unknown-expiry", "newer"}


async def test_prune_checkpoints_keeps_the_newest_and_what_is_recent(store: Store) -> None:
    for round_ in range(3):
        updates, _ = typed([f"round {round_} "])
        await store.append([LogEntry("doc", u, "ann", "n", 1000.0 + round_) for u in updates])
        await store.compact("doc", crdt_core.merge_updates)
    checkpoints = [v.seq for v in await store.history("doc") if v.kind == "checkpoint"]
    assert len(checkpoints) == 3
    assert await store.prune_checkpoints("doc", before=1001.5) == 2  # 1000 and 1001 are older
    assert [v.seq for v in await store.history("doc") if v.kind == "checkpoint"] == [max(checkpoints)]
    assert await store.prune_checkpoints("doc", before=10**10) == 0  # the newest always stays
    loaded = text_of(await store.load("doc"))
    assert all(f"round {n} " in loaded for n in range(3))  # nothing lost from the content
    with pytest.raises(UnknownVersion):
        await store.read_version("doc", min(checkpoints))


async def test_tier_out_only_an_unchanged_document_and_untier(store: Store) -> None:
    updates, _ = typed(["cold ", "text"])
    seqs = await store.append([entry("cold", u) for u in updates])
    await store.add_data_key(WrappedDataKey("cold", "aa" * 8, "k1", b"w", 1.0))
    stale = TieredDocument("cold", seqs[0], 1.0, 2.0)
    assert not await store.tier_out(stale)  # an update arrived after the archived state
    tiered = TieredDocument("cold", seqs[-1], 1.0, 2.0)
    assert await store.tier_out(tiered)
    assert (await store.load("cold")).is_empty and await store.data_key("cold") is None
    assert await store.tiered_documents() == [tiered]
    await store.untier("cold")
    assert await store.tiered_documents() == []
    assert await store.tier_out(TieredDocument("never", 1, 1.0, 2.0)) is False


async def test_import_into_this_store_keeps_seqs_and_moves_the_counter(store: Store) -> None:
    # Rows as this store writes them: ciphertext (with the wrapped data key) under encryption.
    source: Store = (
        EncryptedStore(MemoryStore(), CONTRACT_KEYS) if isinstance(store, EncryptedStore) else MemoryStore()
    )
    updates, _ = typed(["one ", "two ", "three "])
    await source.append([entry("filler", updates[0]) for _ in range(5)])  # seqs start above 1
    await source.append([entry("doc", u, actor="ann") for u in updates])
    await source.compact("doc", crdt_core.merge_updates)
    await source.append([entry("doc", typed(["four"])[0][0], actor="bob")])
    exported = await source.export_document("doc")
    await store.import_document(exported)
    assert await store.export_document("doc") == exported
    assert text_of(await store.load("doc")) == text_of(await source.load("doc"))
    (seq,) = await store.append([entry("next", updates[0])])
    assert seq > exported.last_seq
