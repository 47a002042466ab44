"""The hub's search index opens only when there is work: a document in the store, or a search."""

from __future__ import annotations

import asyncio
import time

import pytest

from persistence.base import LogEntry
from persistence.index.base import IndexUnavailable, SearchHit
from persistence.index.lazy import LazySearchIndex
from persistence.memory import MemoryStore
from tests.support.waiting import eventually


class RecordingIndex:
    """Stands in for chromadb + the model (the real pair is tested in test_search_index.py)."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.closed = False

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        return [SearchHit("doc.md", 0, len(query), query, 1.0)]

    async def forget(self, document: str) -> int:
        self.forgotten.append(document)
        return 1

    async def close(self) -> None:
        self.closed = True


async def test_an_empty_hub_opens_the_index_only_when_someone_searches() -> None:
    opened: list[RecordingIndex] = []

    def open_index() -> RecordingIndex:
        opened.append(RecordingIndex())
        return opened[-1]

    lazy = LazySearchIndex(MemoryStore(), open_index, poll_seconds=0.05, location="test")
    task = asyncio.create_task(lazy.run())
    try:
        await asyncio.sleep(0.3)  # several polls of an empty store
        assert not opened
        with pytest.raises(IndexUnavailable, match="opening"):
            await lazy.search("anything", 3)  # asks for the index and says to retry
        await eventually(lambda: lazy.opened, what="the index opened after a search")
        assert [hit.snippet for hit in await lazy.search("hello", 3)] == ["hello"]
        assert await lazy.forget("doc.md") == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(opened) == 1 and opened[0].closed


async def test_a_stored_document_opens_the_index_and_a_failure_leaves_search_off() -> None:
    store = MemoryStore()
    await store.append([LogEntry("doc.md", b"\x00\x00", "test", "node", time.time())])

    def broken() -> RecordingIndex:
        raise RuntimeError("model missing")

    lazy = LazySearchIndex(store, broken, poll_seconds=0.05, location="test")
    await asyncio.wait_for(lazy.run(), 10)  # returns: search is off, the hub goes on
    assert lazy.failed == "model missing"
    with pytest.raises(IndexUnavailable, match="disabled"):
        await lazy.search("anything", 3)
    with pytest.raises(IndexUnavailable, match="disabled"):
        await lazy.forget("doc.md")
