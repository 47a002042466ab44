"""The semantic-search index's lifetime, entered by the app's lifespan (an exit-stack member).

Opening the index loads the embedding model and chromadb (seconds, off the event loop).
If that fails (missing model, unusable location) search stays off, loudly logged, and the
hub serves everything else: /api/search answers 503 ``search_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from collab_server.settings import Settings
from persistence.base import Store
from persistence.encryption.store import text_sealer
from persistence.index.base import SearchError, SearchIndex

if TYPE_CHECKING:
    from persistence.index.indexer import SearchIndexer

logger = logging.getLogger(__name__)


class SearchService:
    """Holds the running index, or None while it opens or when search is off."""

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


def _open_index(
    store: Store, location: str, interval_seconds: float, loop: asyncio.AbstractEventLoop
) -> SearchIndexer:
    # Imported here, in a worker thread: chromadb and the model take seconds to import.
    from persistence.index.factory import open_search_index
    from persistence.index.indexer import IndexerSettings

    sealer = text_sealer(store, loop)  # encryption at rest: chunk text sealed with the data key
    return open_search_index(
        store, location, IndexerSettings(interval_seconds=interval_seconds), sealer=sealer
    )


@contextlib.asynccontextmanager
async def search_service(settings: Settings, store: Store) -> AsyncIterator[SearchService]:
    service = SearchService()
    location = search_location(settings)
    if location is None:
        yield service
        return
    task = asyncio.create_task(_run(service, store, location, settings), name="search")
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run(service: SearchService, store: Store, location: str, settings: Settings) -> None:
    try:
        loop = asyncio.get_running_loop()
        index = await asyncio.to_thread(_open_index, store, location, settings.search_interval_seconds, loop)
    except (SearchError, OSError, ValueError, ImportError) as exc:
        logger.error("semantic search disabled: %s", exc)
        return
    service.index = index
    logger.info("semantic search index at %s", location)
    try:
        await index.run()
    finally:
        service.index = None
        try:
            await asyncio.shield(index.close())
        except Exception:
            logger.exception("closing the search index failed")
