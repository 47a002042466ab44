"""Group commit: batching, order, retry through store failures, and the backlog bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from persistence.base import LogEntry, StoreUnavailable
from persistence.group_commit import BacklogFull, GroupCommitWriter
from persistence.memory import MemoryStore


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
        await asyncio.sleep(0.2)
        assert not writer.healthy and writer.backlog == 50
        store.down = False
        await asyncio.wait_for(writer.flush(), 5)
        assert writer.healthy and writer.backlog == 0
        writer.stop()
    assert len((await store.load("d")).tail) == 50
    assert writer.last_persisted["d"].seq == 50
