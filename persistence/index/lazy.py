"""LazySearchIndex: a SearchIndex that opens the real one only when there is work for it.

chromadb and the embedding model cost ~150-250 MB of memory and seconds of start-up. A
hub whose store holds no document, and that nobody searches, needs neither: this wrapper
polls the store's document list (cheap) until a document is due for indexing or a search
arrives, and only then opens the index (in a worker thread) and hands over to it. A
document is due as the indexer would take it: once its typing has paused for a poll
interval, or once it has been known for ``staleness_seconds`` (a burst of typing in many
new documents does not pay the opening in the middle of the burst). Until the index is
open, a search answers IndexUnavailable ("still opening"), which the API turns into 503.
A failure to open (missing model, bad location) is logged once and leaves search off;
the hub keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from persistence.base import Store, StoreError
from persistence.index.base import IndexUnavailable, SearchHit

logger = logging.getLogger(__name__)


class ClosableIndex(Protocol):
    async def run(self) -> None: ...

    async def search(self, query: str, limit: int) -> list[SearchHit]: ...

    async def forget(self, document: str) -> int: ...

    async def close(self) -> None: ...


Opener = Callable[[], ClosableIndex]


class LazySearchIndex:
    def __init__(
        self,
        store: Store,
        open_index: Opener,
        poll_seconds: float,
        location: str,
        staleness_seconds: float = 30.0,
    ) -> None:
        """``open_index`` blocks (imports chromadb, loads the model): it runs in a worker thread."""
        self._store = store
        self._open_index = open_index
        self._poll_seconds = poll_seconds
        self._staleness_seconds = staleness_seconds
        self._location = location
        self._wanted = asyncio.Event()  # a search asked for the index
        self._index: ClosableIndex | None = None
        self._settled = asyncio.Event()  # the index opened, or failed to
        self.failed: str | None = None  # why opening failed (search then stays off)

    @property
    def opened(self) -> bool:
        return self._index is not None

    async def run(self) -> None:
        """Wait for work, open the index, then keep it up to date until cancelled."""
        try:
            await self._run()
        finally:
            if self._index is None and self.failed is None:
                self.failed = "the hub is stopping"
            self._settled.set()  # nobody waits for an index that will not open

    async def _run(self) -> None:
        await self._wait_for_work()
        try:
            index = await asyncio.to_thread(self._open_index)
        except Exception as exc:  # missing model, bad location: search stays off, the hub serves
            self.failed = str(exc)
            self._settled.set()
            logger.error("semantic search disabled: %s", exc)
            return
        self._index = index
        self._settled.set()
        logger.info("semantic search index opened at %s", self._location)
        try:
            await index.run()
        finally:
            self._index = None
            try:
                await asyncio.shield(index.close())
            except Exception:  # logged, not swallowed: the hub is stopping either way
                logger.exception("closing the search index failed")

    async def _wait_for_work(self) -> None:
        first_seen: dict[str, float] = {}
        while not self._wanted.is_set():
            try:
                infos = await self._store.list_documents()
                now, clock = time.time(), time.monotonic()
                for info in infos:
                    seen = first_seen.setdefault(info.name, clock)
                    if now - info.updated_at >= self._poll_seconds or clock - seen >= self._staleness_seconds:
                        return
            except (StoreError, OSError) as exc:
                logger.debug("search index: store not readable yet: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._poll_seconds)

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        index = self._index
        if index is None:
            if self.failed is not None:
                raise IndexUnavailable(f"semantic search is disabled: {self.failed}")
            self._wanted.set()
            raise IndexUnavailable("the search index is opening; try again in a few seconds")
        return await index.search(query, limit)

    async def forget(self, document: str) -> int:
        """Erase a document's chunks; opens the index first (an earlier run may have stored some)."""
        if self._index is None and self.failed is None:
            self._wanted.set()
            await self._settled.wait()
        if self._index is None:
            raise IndexUnavailable(f"semantic search is disabled: {self.failed}")
        return await self._index.forget(document)
