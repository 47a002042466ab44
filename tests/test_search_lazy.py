"""The hub's search index opens only when there is work: a document in the store, or a search."""

from __future__ import annotations

import asyncio
import time

import pytest

from persistence.base import LogEntry
from persistence.index.base import IndexUnavailable, SearchHit
from persistence.index.lazy import LazySearchIndex
from persistence.memory import MemoryStore
from tests.fast.stores import CountingStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


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

    store = CountingStore()
    lazy = LazySearchIndex(store, open_index, poll_seconds=0.05, location="test")
    task = asyncio.create_task(lazy.run())
    try:
        await eventually(lambda: store.listings >= 4, what="several polls of an empty store")
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


async def test_documents_under_continuous_typing_open_the_index_once_quiet_or_stale() -> None:
    """A burst of typing does not pay the index's opening mid-burst: it waits for a pause
    (or the staleness bound), as the indexer itself would."""
    opened: list[RecordingIndex] = []

    def open_index() -> RecordingIndex:
        opened.append(RecordingIndex())
        return opened[-1]

    store = CountingStore()
    typing_on = True

    async def type_continuously() -> None:
        while typing_on:
            await store.append([LogEntry("busy.md", b"\x00\x00", "w", "n", time.time())])
            await asyncio.sleep(0.01)

    typist = asyncio.create_task(type_continuously())
    lazy = LazySearchIndex(store, open_index, poll_seconds=0.2, location="test", staleness_seconds=1.0)
    task = asyncio.create_task(lazy.run())
    try:
        # Three polls, each seeing the document changed just now (the typist writes every 10 ms).
        await eventually(lambda: store.listings >= 3, timeout=5, what="three polls while typing")
        assert not opened
        await eventually(lambda: lazy.opened, timeout=5, what="opened once the document was stale")
    finally:
        typing_on = False
        await typist
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(opened) == 1

    quiet = LazySearchIndex(store, open_index, poll_seconds=0.1, location="test", staleness_seconds=3600.0)
    task = asyncio.create_task(quiet.run())
    try:  # typing has stopped: the document is quiet after one poll interval
        await eventually(lambda: quiet.opened, timeout=5, what="opened once the typing paused")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
