"""Group commit: batching, order, retry through store failures, the backlog bound, and the
two-step commit (written, then fsynced) that lets relays go ahead of the disk."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from persistence.base import LogEntry, StoreUnavailable
from persistence.base import TwoStepStore as TwoStepStoreProtocol
from persistence.group_commit import BacklogFull, GroupCommitWriter
from persistence.memory import MemoryStore
from persistence.sqlite import SqliteStore
from tests.fast.stores import PoisonStore, TwoStepStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


class FlakyStore(MemoryStore):
    """A MemoryStore that fails while ``down`` is set (a stand-in for a database outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.batches: list[int] = []

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        await asyncio.sleep(0.001)
        if self.down:
            raise StoreUnavailable("database is down")
        self.batches.append(len(entries))
        return await super().append(entries)


def entry(document: str, n: int) -> LogEntry:
    return LogEntry(document, bytes([n % 256]), "actor", "node", float(n))


async def test_entries_arriving_together_share_a_commit_and_keep_their_order() -> None:
    store = FlakyStore()
    writer = GroupCommitWriter(store)
    committed: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        for n in range(200):
            writer.submit(entry("d", n), committed.append)
        await writer.flush()
        writer.stop()
    assert committed == sorted(committed) and len(committed) == 200
    assert len(store.batches) < 20  # grouped, not one commit per entry
    stored = await store.load("d")
    assert list(stored.tail) == [bytes([n]) for n in range(200)]


async def test_outage_is_retried_without_loss_and_the_backlog_is_bounded() -> None:
    store = FlakyStore()
    store.down = True
    writer = GroupCommitWriter(store, max_backlog=50, max_backoff_seconds=0.05)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        for n in range(50):
            writer.submit(entry("d", n))
        with pytest.raises(BacklogFull):
            writer.submit(entry("d", 99))
        await eventually(lambda: not writer.healthy, what="the outage noticed")
        assert writer.backlog == 50
        store.down = False
        await asyncio.wait_for(writer.flush(), 5)
        assert writer.healthy and writer.backlog == 0
        writer.stop()
    assert len((await store.load("d")).tail) == 50
    assert writer.last_persisted["d"].seq == 50


async def test_a_poisoned_document_is_set_aside_while_the_others_keep_committing() -> None:
    store = PoisonStore("bad")
    set_aside: list[tuple[str, str]] = []
    writer = GroupCommitWriter(store, on_set_aside=lambda d, why: set_aside.append((d, why)))
    good: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        for n in range(30):
            writer.submit(entry("good", n), good.append)
            writer.submit(entry("bad", n))
        await asyncio.wait_for(writer.flush(), 5)
        # The poisoned document refuses new writes for a while; the others still commit.
        assert writer.set_aside("bad")
        with pytest.raises(BacklogFull):
            writer.submit(entry("bad", 99))
        writer.submit(entry("good", 30), good.append)
        await asyncio.wait_for(writer.flush(), 5)
        writer.stop()
    assert [d for d, _ in set_aside] == ["bad"] and "constraint" in set_aside[0][1]
    assert len(good) == 31 and writer.healthy and writer.backlog == 0
    assert len((await store.load("good")).tail) == 31
    assert (await store.load("bad")).is_empty


async def test_transient_failures_never_set_a_document_aside() -> None:
    store = FlakyStore()
    store.down = True
    set_aside: list[str] = []
    writer = GroupCommitWriter(store, max_backoff_seconds=0.02, on_set_aside=lambda d, _: set_aside.append(d))
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        writer.submit(entry("a", 1))
        writer.submit(entry("b", 2))
        await eventually(lambda: not writer.healthy, what="the first failed attempt")
        store.down = False
        await asyncio.wait_for(writer.flush(), 5)
        writer.stop()
    assert set_aside == [] and writer.backlog == 0


async def test_two_step_store_writes_on_while_an_fsync_runs_and_one_fsync_covers_them() -> None:
    store = TwoStepStore()
    store.sync_gate.clear()
    writer = GroupCommitWriter(store)
    written: list[int] = []
    committed: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        writer.submit(entry("d", 0), committed.append, written.append)
        await eventually(lambda: store.syncs_started == 1, what="the first fsync in flight")
        assert written == [1] and committed == []
        for n in range(1, 4):  # written while the first fsync is still in flight
            writer.submit(entry("d", n), committed.append, written.append)
        await eventually(lambda: written == [1, 2, 3, 4], what="writes during the fsync")
        assert committed == [] and writer.document_pending("d") and "d" not in writer.last_persisted
        flushed = asyncio.ensure_future(writer.flush())
        store.sync_gate.set()
        await asyncio.wait_for(flushed, 5)
        assert committed == [1, 2, 3, 4] and not writer.document_pending("d")
        assert store.syncs == 2  # the first entry's fsync, then one for the three written meanwhile
        assert writer.last_persisted["d"].seq == 4
        writer.stop()


async def test_a_failed_fsync_holds_acknowledgements_back_and_is_retried() -> None:
    store = TwoStepStore()
    store.failing_syncs = 10**6
    writer = GroupCommitWriter(store, max_backoff_seconds=0.02)
    written: list[int] = []
    committed: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        writer.submit(entry("d", 0), committed.append, written.append)
        await eventually(lambda: not writer.healthy and store.syncs_started >= 2, what="fsync retried")
        assert written == [1] and committed == [] and writer.document_pending("d")
        assert "fsync failed" in (writer.last_error or "")
        store.failing_syncs = 0
        await asyncio.wait_for(writer.flush(), 5)
        assert committed == [1] and store.syncs == 1 and writer.healthy and writer.last_error is None
        writer.stop()


async def test_stop_returns_only_after_the_last_fsync() -> None:
    store = TwoStepStore()
    writer = GroupCommitWriter(store)
    async with asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(writer.run())
        store.sync_gate.clear()
        writer.submit(entry("d", 0))
        await eventually(lambda: store.syncs_started == 1, what="the fsync in flight")
        writer.stop()
        await eventually(lambda: writer.backlog == 0, what="the queue written")
        assert not runner.done()  # written, not yet durable: run has not returned
        store.sync_gate.set()
    assert store.syncs == 1 and not writer.document_pending("d")


async def test_sqlite_unsynced_commits_are_visible_at_once_and_sync_flushes_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "two-step.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        assert isinstance(store, TwoStepStoreProtocol)
        seqs = await store.append_unsynced([entry("d", 1), entry("d", 2)])
        with sqlite3.connect(path) as other:  # another process would see it: it is committed
            rows = other.execute("SELECT seq FROM updates WHERE document = 'd' ORDER BY seq").fetchall()
        assert [row[0] for row in rows] == seqs
        await store.sync()
        assert len((await store.load("d")).tail) == 2
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.sync()


async def test_fsyncs_are_paced_and_one_covers_everything_written_meanwhile() -> None:
    store = TwoStepStore()
    writer = GroupCommitWriter(store, sync_interval_seconds=1.0)
    written: list[int] = []
    committed: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run())
        writer.submit(entry("d", 0), committed.append, written.append)
        await asyncio.wait_for(writer.flush(), 5)  # a quiet writer syncs at once
        assert committed == [1] and store.syncs == 1
        synced_at = asyncio.get_running_loop().time()
        for n in range(1, 4):  # three separate commits inside the interval
            writer.submit(entry("d", n), committed.append, written.append)
            await eventually(lambda n=n: len(written) == n + 1, what="relayable once written")
        assert committed == [1] and writer.document_pending("d")  # not yet durable
        await asyncio.wait_for(writer.flush(), 5)
        assert asyncio.get_running_loop().time() - synced_at >= 0.9  # waited for the interval
        assert committed == [1, 2, 3, 4] and store.syncs == 2  # one fsync for the three
        writer.stop()


async def test_sqlite_commits_on_the_loop_when_free_and_falls_back_when_busy(tmp_path: Path) -> None:
    path = tmp_path / "inline.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        seqs = store.try_append_unsynced([entry("d", 1)])
        assert seqs is not None  # written now, no hop: another connection sees it
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT seq FROM updates").fetchall() == [(seqs[0],)]
        with store._lock:  # the worker holds the connection: never wait for it
            assert store.try_append_unsynced([entry("d", 2)]) is None
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            started = asyncio.get_running_loop().time()
            assert store.try_append_unsynced([entry("d", 3)]) is None
            assert asyncio.get_running_loop().time() - started < 1.0  # no busy wait on the loop
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        # The worker path still waits for a busy lock (busy_timeout restored for it).
        assert len(await store.append_unsynced([entry("d", 4)])) == 1
        await store.sync()
        assert [bytes(u) for u in (await store.load("d")).tail] == [bytes([1]), bytes([4])]
    finally:
        await store.close()
    assert store.try_append_unsynced([entry("d", 5)]) is None  # closed: nothing written


async def test_sqlite_checkpoints_beside_the_commits_and_the_worker_is_the_backstop(tmp_path: Path) -> None:
    from persistence import sqlite as sqlite_module

    every = sqlite_module.CHECKPOINT_AFTER_COMMITS
    path = tmp_path / "checkpoint.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        for n in range(every):  # on the loop: no checkpoint ever runs inside these commits
            assert store.try_append_unsynced([entry("d", n)]) is not None
        assert store._checkpoint_due()
        await store.sync()  # the fsync thread checkpoints through its own connection
        assert store._commits_since_checkpoint == 0 and store._checkpointer is not None
        # No syncs (the fsync thread stuck): at twice the bound the loop stops writing ...
        inline = 0
        while store.try_append_unsynced([entry("d", inline)]) is not None:
            inline += 1
            assert inline <= 2 * every
        assert inline == 2 * every
        await store.append_unsynced([entry("d", 0)])  # ... and the worker checkpoints after its write
        assert store._commits_since_checkpoint == 0
        assert store.try_append_unsynced([entry("d", 1)]) is not None
        assert len((await store.load("d")).tail) == 3 * every + 2
    finally:
        await store.close()
    assert store._checkpointer is None
    assert not (tmp_path / "checkpoint.sqlite3-wal").exists()  # the last connection cleaned up the WAL
