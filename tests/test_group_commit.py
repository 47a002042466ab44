"""Group commit: batching, order, retry through store failures, and the backlog bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from persistence.base import LogEntry, StoreUnavailable
from persistence.group_commit import BacklogFull, GroupCommitWriter
from persistence.memory import MemoryStore
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


class PoisonStore(MemoryStore):
    """A MemoryStore whose database refuses one document's rows (a constraint, bad data)."""

    def __init__(self, poisoned: str) -> None:
        super().__init__()
        self.poisoned = poisoned

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        if any(e.document == self.poisoned for e in entries):
            raise ValueError(f"row of {self.poisoned!r} violates a constraint")
        return await super().append(entries)


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
