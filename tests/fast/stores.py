"""Memory stores that misbehave on purpose, for the in-process tests of the writer, rooms and hub."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from persistence.base import DocumentInfo, LogEntry
from persistence.memory import MemoryStore


class GatedStore(MemoryStore):
    """Commits wait at ``gate`` (open at first); ``waiting`` counts the commits held there."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        return await super().append(entries)


class TwoStepStore(MemoryStore):
    """SQLite's two-step commit: ``append_unsynced``, then a ``sync`` that waits at ``sync_gate``
    (open at first) and fails while ``failing_syncs`` is above zero."""

    def __init__(self) -> None:
        super().__init__()
        self.sync_gate = asyncio.Event()
        self.sync_gate.set()
        self.failing_syncs = 0
        self.syncs_started = 0
        self.syncs = 0  # completed

    async def append_unsynced(self, entries: Sequence[LogEntry]) -> list[int]:
        return await super().append(entries)

    async def sync(self) -> None:
        self.syncs_started += 1
        await self.sync_gate.wait()
        if self.failing_syncs:
            self.failing_syncs -= 1
            raise OSError("fsync failed")
        self.syncs += 1


class PoisonStore(MemoryStore):
    """Refuses the rows of one document (a constraint, bad data), as a real database might."""

    def __init__(self, poisoned: str) -> None:
        super().__init__()
        self.poisoned = poisoned

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        if any(entry.document == self.poisoned for entry in entries):
            raise ValueError(f"rows of {self.poisoned!r} violate a constraint")
        return await super().append(entries)


class CountingStore(MemoryStore):
    """Counts ``list_documents`` calls: what a poller of the store did, observable."""

    def __init__(self) -> None:
        super().__init__()
        self.listings = 0

    async def list_documents(self) -> list[DocumentInfo]:
        self.listings += 1
        return await super().list_documents()
