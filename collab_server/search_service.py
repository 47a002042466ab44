"""The semantic-search index's lifetime, entered by the app's lifespan (an exit-stack member).

The index runs in a worker process (``search_process.py``, ``search_worker.py``) started only
once there is something to index or search, since chromadb and the model cost ~200 MB an
idle hub need not pay, and their import and indexing passes would otherwise hold the hub's
interpreter lock for seconds (every relay waited). A store handed in by a caller (tests,
embedding) cannot be opened by another process: then the index runs in this process
(`persistence/index/lazy.py`), opened off the loop. If opening fails (missing model,
unusable location) search stays off, loudly logged, and the hub serves everything else:
/api/search answers 503 ``search_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from collab_server.search_process import RecentCommits, SearchProcess, worker_config
from collab_server.settings import MIB, Settings
from persistence.base import Store
from persistence.encryption.store import text_sealer
from persistence.index.base import SearchIndex
from persistence.index.indexer import IndexerSettings, SearchIndexer
from persistence.index.lazy import LazySearchIndex


class SearchService:
    """Holds the running index, or None when search is off."""

    def __init__(self) -> None:
        self.index: SearchIndex | None = None


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
async def search_service(
    settings: Settings,
    store: Store,
    *,
    in_process: bool = False,
    recent_commits: RecentCommits = lambda: (),
) -> AsyncIterator[SearchService]:
    """``in_process``: ``store`` is not the one ``settings`` name (a caller's), so a worker
    process could not open it. ``recent_commits``: (document, time) of this hub's last
    commits, read instead of the store while deciding when to start the worker."""
    service = SearchService()
    location = search_location(settings)
    if location is None:
        yield service
        return
    interval = settings.search_interval_seconds
    index: LazySearchIndex | SearchProcess
    if in_process or settings.store_url in ("memory", "memory://"):
        sealer = text_sealer(store, asyncio.get_running_loop())  # encryption at rest: sealed chunk text

        def open_index() -> SearchIndexer:  # runs in a worker thread: chromadb and the model are heavy
            from persistence.index.factory import open_search_index

            return open_search_index(
                store, location, IndexerSettings(interval_seconds=interval), sealer=sealer
            )

        index = LazySearchIndex(store, open_index, interval, location)
    else:
        index = SearchProcess(
            store,
            worker_config(settings, location),
            poll_seconds=interval,
            max_rss_bytes=settings.search_worker_max_mb * MIB,
            recent_commits=recent_commits,
        )
    service.index = index
    task = asyncio.create_task(index.run(), name="search")
    try:
        yield service
    finally:
        service.index = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if isinstance(index, SearchProcess):
            await index.close()
