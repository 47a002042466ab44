"""The semantic-search worker process: ``python -m collab_server.search_worker``.

The hub starts it (``search_process.py``) so that chromadb, the embedding model and the
indexing passes (rebuilding text, chunking, embedding) never share the hub's interpreter
lock or its memory: importing chromadb alone holds the lock for seconds, which stalled
every relay of the hub while the index opened. It runs at a lower CPU priority than the
hub.

It opens the hub's store by the same settings (its own connection: with SQLite a WAL
reader that never blocks the hub's writes), keeps the index up to date, and answers the
hub's requests, one JSON object per line: ``{"id", "op": "search", "query", "limit"}`` or
``{"id", "op": "forget", "document"}`` on stdin; ``{"id", "hits": [...]}``,
``{"id", "removed": N}`` or ``{"id", "error": {"kind", "message"}}`` on stdout. The first
line on stdin is its configuration (store settings, secrets included, so they are never on
a command line). End of stdin (the hub closed the pipe, or died) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from typing import Any

from collab_server.app import configured_store
from collab_server.cli import master_key_secrets
from collab_server.logs import configure_logging
from collab_server.settings import Settings
from persistence.encryption.store import text_sealer
from persistence.index.base import EmptyQuery, IndexUnavailable, SearchError
from persistence.index.indexer import IndexerSettings, SearchIndexer
from persistence.index.lazy import LazySearchIndex

logger = logging.getLogger(__name__)

NICENESS = 10  # indexing takes CPU the hub does not need, never the hub's
MAX_CONCURRENT_REQUESTS = 16  # the hub bounds its requests too; this guards the worker itself


def settings_from(config: dict[str, Any]) -> Settings:
    return dataclasses.replace(Settings(), **config["settings"])


class Worker:
    def __init__(self, index: LazySearchIndex) -> None:
        self._index = index
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request's reply (never raises for a bad request: it is answered with an error)."""
        ident = request.get("id")
        try:
            async with self._limit:
                if request.get("op") == "search":
                    hits = await self._index.search(str(request["query"]), int(request["limit"]))
                    return {"id": ident, "hits": [dataclasses.asdict(hit) for hit in hits]}
                if request.get("op") == "forget":
                    return {"id": ident, "removed": await self._index.forget(str(request["document"]))}
                return _error(ident, "invalid", f"unknown op {request.get('op')!r}")
        except EmptyQuery as exc:
            return _error(ident, "empty_query", str(exc))
        except (IndexUnavailable, SearchError) as exc:
            return _error(ident, "unavailable", str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            return _error(ident, "invalid", f"{type(exc).__name__}: {exc}")


def _error(ident: object, kind: str, message: str) -> dict[str, Any]:
    return {"id": ident, "error": {"kind": kind, "message": message}}


async def serve(config: dict[str, Any], requests: asyncio.StreamReader) -> None:
    settings = settings_from(config)
    location = str(config["location"])
    store = configured_store(settings)
    await store.open()
    sealer = text_sealer(store, asyncio.get_running_loop())
    interval = settings.search_interval_seconds

    def open_index() -> SearchIndexer:  # chromadb and the model: imported only when there is work
        from persistence.index.factory import open_search_index

        return open_search_index(store, location, IndexerSettings(interval_seconds=interval), sealer=sealer)

    index = LazySearchIndex(store, open_index, interval, location)
    worker = Worker(index)
    write_lock = asyncio.Lock()

    async def reply(request: dict[str, Any]) -> None:
        answer = await worker.answer(request)
        async with write_lock:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()

    try:
        async with asyncio.TaskGroup() as tasks:
            indexing = tasks.create_task(index.run(), name="search-index")
            while line := await requests.readline():
                try:
                    request = json.loads(line)
                except ValueError:
                    logger.error("search worker: unreadable request line dropped")
                    continue
                tasks.create_task(reply(request))
            indexing.cancel()  # end of input: the hub is stopping (or gone)
    finally:
        await store.close()


async def main() -> None:
    loop = asyncio.get_running_loop()
    requests = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(requests), sys.stdin)
    first = await requests.readline()
    if not first:
        return
    config = json.loads(first)
    settings = settings_from(config)
    configure_logging(
        settings.log_level,
        json_lines=settings.log_json,
        node_id=f"{settings.node_id}/search",
        secrets=(settings.archive_secret_key, *master_key_secrets(settings.master_keys)),
    )
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logger.info("search worker started (pid %d)", os.getpid())
    await serve(config, requests)
    logger.info("search worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
