"""The semantic-search index's lifetime, entered by the app's lifespan (an exit-stack member).

The index opens lazily (`persistence/index/lazy.py`): only once there is something to index
or search, since chromadb and the model cost ~200 MB an idle hub need not pay. If opening
fails (missing model, unusable location) search stays off, loudly logged, and the hub
serves everything else: /api/search answers 503 ``search_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from collab_server.settings import Settings
from persistence.base import Store
from persistence.encryption.store import text_sealer
from persistence.index.indexer import IndexerSettings, SearchIndexer
from persistence.index.lazy import LazySearchIndex


class SearchService:
    """Holds the running index, or None when search is off."""

    def __init__(self) -> None:
        self.index: LazySearchIndex | None = None


def search_location(settings: Settings) -> str | None:
    """Where the search index lives, or None when search is off (or nowhere to keep it)."""
    if settings.search == "off":
        return None
    if settings.search.startswith(("http://", "https://")):
        return settings.search
    if settings.search_dir:
        return settings.search_dir
    if settings.store.startswith("sqlite:///"):
        return settings.store[len("sqlite:///") :] + ".search"
    return None  # memory or PostgreSQL without --search-dir: no local place to keep it


@contextlib.asynccontextmanager
async def search_service(settings: Settings, store: Store) -> AsyncIterator[SearchService]:
    service = SearchService()
    location = search_location(settings)
    if location is None:
        yield service
        return
    interval = settings.search_interval_seconds
    sealer = text_sealer(store, asyncio.get_running_loop())  # encryption at rest: sealed chunk text

    def open_index() -> SearchIndexer:  # runs in a worker thread: chromadb and the model are heavy
        from persistence.index.factory import open_search_index

        return open_search_index(store, location, IndexerSettings(interval_seconds=interval), sealer=sealer)

    service.index = LazySearchIndex(store, open_index, interval, location)
    task = asyncio.create_task(service.index.run(), name="search")
    try:
        yield service
    finally:
        service.index = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
