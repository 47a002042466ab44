"""SearchIndexer: keeps a chunk store in step with the documents of a Store, and searches it.

``run`` polls ``Store.list_documents`` every ``interval_seconds`` and re-indexes each
document whose ``last_seq`` moved, most recently changed first. A document is re-indexed
once it has been quiet for an interval, or every ``max_staleness_seconds`` while typing goes
on, and the indexer rests between passes so that it is busy at most ``max_busy_share`` of
the time: with hundreds of documents edited at once it costs a bounded share of a core and
the index lags a little more, never the edits. Indexing is
incremental: the text of every root field (``crdt_core.fields``: Y.Text, Y.XmlFragment as
plain text, Y.Map/Y.Array values holding text) is rebuilt from the stored snapshot and
tail, each field is cut into chunks
(``chunking.py``), and each chunk is known by the hash of its text, so only chunks
whose text is new are embedded, and vanished ones are deleted (after the new ones are
in, so a search never sees a document with neither). Chunks whose text is unchanged
but moved (text was inserted above them) are not touched in the store: the indexer
keeps every indexed document's current chunk ranges in memory and gives search hits
those, so an edit costs work near the edit, not a rewrite of every later chunk. (A hit
from a chunk this process has not indexed carries the range stored with it.) Reading the
store rather than the hub's memory makes this work the same behind one hub node or many;
with a shared chromadb server, every node's indexer writes the same ids (idempotent), so
running it on one node is enough.

All blocking work (rebuilding text, embedding, chromadb calls) runs on the indexer's
own small thread pool, so the event loop keeps serving. An outage of the store or of
chromadb is logged and retried with backoff; ``run`` never ends on its own, and the
hub's edits never wait for it. ``search`` raises EmptyQuery or IndexUnavailable.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import pycrdt

import crdt_core
from crdt_core.fields import read_fields
from persistence.base import CorruptDocument, DocumentInfo, Store, StoreError
from persistence.index.base import (
    DEFAULT_FIELD,
    ChunkStore,
    EmptyQuery,
    IndexUnavailable,
    NewChunk,
    SearchHit,
    StoredChunk,
)
from persistence.index.chunking import Chunk, ChunkLimits, TokenCounter, chunk_text

logger = logging.getLogger(__name__)

T = TypeVar("T")

TEXT_FIELD = DEFAULT_FIELD  # the root Y.Text Nova's clients edit


@dataclass(frozen=True, slots=True)
class IndexerSettings:
    interval_seconds: float = 2.0  # between polls of the store (also the debounce)
    # While a document keeps changing, ``run`` re-indexes it once it has been quiet for
    # ``interval_seconds`` or at least every ``max_staleness_seconds`` (not at every poll:
    # 200 documents under constant typing would otherwise keep the model busy for cores).
    max_staleness_seconds: float = 30.0
    # ``run`` keeps indexing to this share of the time, with bursts of up to
    # ``busy_burst_seconds`` of work (a start-up pass, a paste): beyond them a pass that took
    # 1 s is followed by 3 s of rest at 0.25, so the CPU it takes is bounded under any load.
    max_busy_share: float = 0.25
    busy_burst_seconds: float = 10.0
    # Documents stored larger than this are not indexed (logged once): rebuilding one to read
    # its text costs many times its size in memory, and a book-sized text minutes of embedding.
    max_document_bytes: int = 8 * 1024 * 1024
    max_backoff_seconds: float = 60.0  # longest wait between retries while the store or chromadb is down
    query_timeout_seconds: float = 10.0  # a search that takes longer fails with IndexUnavailable
    max_query_chars: int = 1000  # longer queries are cut (the model reads 256 tokens anyway)
    max_results: int = 50  # ceiling of a search's limit
    worker_threads: int = 2  # the indexer's pool for embedding, chromadb calls and text rebuilds
    close_timeout_seconds: float = 10.0  # how long close waits for a call in progress
    chunking: ChunkLimits = field(default_factory=ChunkLimits)


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one poll did."""

    documents: int = 0  # re-indexed
    embedded: int = 0  # chunks embedded and added
    moved: int = 0  # chunks whose range changed (kept in memory; neither embedded nor written)
    deleted: int = 0  # chunks removed (edited away or their document gone)
    skipped: int = 0  # documents that could not be read (logged)


@dataclass(slots=True)
class _Indexed:
    seq: int
    chunks: dict[str, StoredChunk]
    at: float = field(default_factory=time.monotonic)  # when this process indexed it


def chunk_ids(document: str, chunks: Sequence[Chunk], field: str = DEFAULT_FIELD) -> list[str]:
    """Stable ids: the document, the field, the chunk's text hash, and its rank among equal texts.

    The default field keeps the ids it had before documents had several fields.
    """
    seen: Counter[str] = Counter()
    ids = []
    owner = document if field == DEFAULT_FIELD else f"{document}\0field\0{field}"
    for chunk in chunks:
        occurrence = seen[chunk.digest]
        seen[chunk.digest] += 1
        key = f"{owner}\0{chunk.digest}\0{occurrence}".encode("utf-8", "surrogatepass")
        ids.append(hashlib.sha256(key).hexdigest()[:40])
    return ids


def texts_of_stored(parts: Sequence[bytes]) -> dict[str, str]:
    """The plain text of every root field of a stored document (its ``StoredDocument.parts``)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in parts:
        crdt_core.untrusted("stored update", lambda: doc.apply_update(update))  # noqa: B023 (called at once)
    return {field.name: field.text for field in read_fields(doc.get_update())}


class SearchIndexer:
    def __init__(
        self,
        store: Store,
        chunks: ChunkStore,
        settings: IndexerSettings | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> None:
        """``count_tokens``: the embedding model's, so no chunk outgrows what the model reads."""
        self.store = store
        self.chunks = chunks
        self.settings = settings or IndexerSettings()
        self.count_tokens = count_tokens
        self._indexed: dict[str, _Indexed] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._pass_lock = asyncio.Lock()
        self._progress = asyncio.Condition()  # notified whenever a document has been indexed
        self.available = True  # False while the last pass failed on the store or chromadb
        self.last_error: str | None = None
        self.passes = 0  # completed polls
        self.failed_passes = 0  # polls that failed (store or chromadb down, or a bug; all logged)
        self.embedded_chunks = 0

    # -- lifetime -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Let a call in progress (an embedding, a chromadb write) finish, then disconnect.

        Waits at most ``close_timeout_seconds``: a call stuck on an unresponsive chromadb
        server is left to its thread (logged) rather than holding up the hub's shutdown.
        """
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            waiter = asyncio.ensure_future(asyncio.to_thread(executor.shutdown, wait=True))
            try:
                await asyncio.wait_for(asyncio.shield(waiter), self.settings.close_timeout_seconds)
            except TimeoutError:
                logger.warning(
                    "search index: a call to %r still runs after %.1fs; closing without it",
                    self.chunks,
                    self.settings.close_timeout_seconds,
                )
        self.chunks.close()

    async def _offload(self, function: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise IndexUnavailable("the search index is closed")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.settings.worker_threads, thread_name_prefix="search-index"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def run(self) -> None:
        """Poll and index until cancelled; failures are logged and retried with backoff."""
        delay = self.settings.interval_seconds
        share, burst = self.settings.max_busy_share, self.settings.busy_burst_seconds
        budget, refilled = burst, time.monotonic()  # seconds of work allowed now (a token bucket)
        while True:
            started = time.monotonic()
            try:
                report = await self.sync_once(defer_busy=True)
            except (IndexUnavailable, StoreError) as exc:
                delay = min(max(delay * 2, self.settings.interval_seconds), self.settings.max_backoff_seconds)
                self._fail(exc, delay)
            except Exception as exc:
                # A bug in indexing must not take the hub's edits down with it: log it in
                # full and keep the loop alive (``available`` and ``last_error`` show it).
                delay = self.settings.max_backoff_seconds
                logger.exception("search indexing pass failed; retrying in %.1fs", delay)
                self.failed_passes += 1
                self.available = False
                self.last_error = repr(exc)
            else:
                now = time.monotonic()
                budget = min(burst, budget + (now - refilled) * share - (now - started))
                refilled = now
                rest = -budget / share if budget < 0 else 0.0  # until the bucket is back at zero
                delay = max(self.settings.interval_seconds, rest)
                if report.documents or report.deleted:
                    logger.info(
                        "search index: %d documents re-indexed, %d chunks embedded, %d moved, %d deleted",
                        report.documents,
                        report.embedded,
                        report.moved,
                        report.deleted,
                    )
            await asyncio.sleep(delay)

    def _fail(self, exc: Exception, delay: float) -> None:
        if self.available or self.last_error != str(exc):
            logger.warning("search index unavailable (%s); retrying in %.1fs", exc, delay)
        self.failed_passes += 1
        self.available = False
        self.last_error = str(exc)

    # -- indexing -------------------------------------------------------------------

    def indexed_seq(self, document: str) -> int | None:
        """The document's seq that the index reflects, or None if not indexed yet."""
        indexed = self._indexed.get(document)
        return indexed.seq if indexed else None

    async def wait_indexed(self, document: str, seq: int) -> None:
        """Return once the index reflects ``document`` at ``seq`` or later (wrap in a timeout)."""
        async with self._progress:
            await self._progress.wait_for(lambda: (self.indexed_seq(document) or 0) >= seq)

    async def sync_once(self, *, defer_busy: bool = False) -> PassReport:
        """One poll: index every changed document, drop the chunks of vanished ones.

        ``defer_busy``: leave a document that changed within ``interval_seconds`` for a later
        poll, unless its index is older than ``max_staleness_seconds`` (what ``run`` does).
        """
        async with self._pass_lock:
            report = PassReport()
            infos = await self.store.list_documents()
            names = {info.name for info in infos}
            now, clock = time.time(), time.monotonic()

            def due(info: DocumentInfo) -> bool:
                indexed = self._indexed.get(info.name)
                if indexed is None:
                    return True
                if indexed.seq == info.last_seq:
                    return False
                if not defer_busy or now - info.updated_at >= self.settings.interval_seconds:
                    return True
                return clock - indexed.at >= self.settings.max_staleness_seconds

            changed = [info for info in infos if due(info)]
            changed.sort(key=lambda info: info.updated_at, reverse=True)
            for info in changed:
                report = _add(report, await self._index_document(info.name))
            for gone in sorted(self._indexed.keys() - names):
                ids = list(self._indexed[gone].chunks)
                await self._offload(self.chunks.delete, ids)
                del self._indexed[gone]
                report = _add(report, PassReport(deleted=len(ids)))
            self.passes += 1
            self.available = True
            self.last_error = None
            return report

    async def _index_document(self, name: str) -> PassReport:
        try:
            stored = await self.store.load(name)
        except CorruptDocument as exc:
            logger.error("search index: skipping document %r: %s", name, exc)
            return PassReport(skipped=1)
        size = stored.size_bytes
        if size > self.settings.max_document_bytes:
            indexed = self._indexed.get(name)
            if indexed is None or indexed.chunks:  # first time, or it grew past the limit
                logger.warning(
                    "search index: document %r is %d bytes, above max_document_bytes (%d): not indexed",
                    name,
                    size,
                    self.settings.max_document_bytes,
                )
            self._indexed[name] = _Indexed(stored.last_seq, indexed.chunks if indexed else {})
            return PassReport(skipped=1)
        try:
            texts_by_field = await self._offload(texts_of_stored, stored.parts)
        except (ValueError, TypeError) as exc:  # not decodable
            logger.error("search index: cannot read the text of document %r: %s", name, exc)
            indexed = self._indexed.get(name)
            self._indexed[name] = _Indexed(stored.last_seq, indexed.chunks if indexed else {})
            return PassReport(skipped=1)

        started = time.perf_counter()
        wanted: dict[str, StoredChunk] = {}
        texts: dict[str, str] = {}
        for field_name, text in sorted(texts_by_field.items()):
            pieces = await self._offload(chunk_text, text, self.settings.chunking, self.count_tokens)
            for chunk_id, piece in zip(chunk_ids(name, pieces, field_name), pieces, strict=True):
                wanted[chunk_id] = StoredChunk(chunk_id, name, piece.start, piece.end, field_name)
                texts[chunk_id] = piece.text
        previous = self._indexed.get(name)
        if previous is not None:
            have = previous.chunks
        else:  # first look since start: what an earlier run (or another node) already stored
            have = {c.id: c for c in await self._offload(self.chunks.chunks_of, name)}

        new = [
            NewChunk(c.id, name, c.start, c.end, texts[c.id], c.field)
            for c in wanted.values()
            if c.id not in have
        ]
        moved = [c for c in wanted.values() if c.id in have and have[c.id] != c]
        gone = [chunk_id for chunk_id in have if chunk_id not in wanted]
        await self._offload(self.chunks.add, new)  # embeds: the expensive part
        await self._offload(self.chunks.delete, gone)
        self._indexed[name] = _Indexed(stored.last_seq, wanted)
        self.embedded_chunks += len(new)
        async with self._progress:
            self._progress.notify_all()
        logger.debug(
            "search index: %r at seq %d: %d chunks, %d embedded, %d moved, %d deleted in %.3fs",
            name,
            stored.last_seq,
            len(wanted),
            len(new),
            len(moved),
            len(gone),
            time.perf_counter() - started,
        )
        return PassReport(documents=1, embedded=len(new), moved=len(moved), deleted=len(gone))

    async def forget(self, document: str) -> int:
        """Delete every chunk of ``document`` from the index (erasure), known here or not."""
        async with self._pass_lock:
            indexed = self._indexed.pop(document, None)
            ids = set(indexed.chunks if indexed else ())
            ids |= {chunk.id for chunk in await self._offload(self.chunks.chunks_of, document)}
            await self._offload(self.chunks.delete, sorted(ids))
            return len(ids)

    # -- searching ------------------------------------------------------------------

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        text = " ".join(query.split())[: self.settings.max_query_chars]
        if not text:
            raise EmptyQuery("the query is empty")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        limit = min(limit, self.settings.max_results)
        try:
            async with asyncio.timeout(self.settings.query_timeout_seconds):
                stored = await self._offload(self.chunks.query, text, limit)
        except TimeoutError as exc:
            raise IndexUnavailable(
                f"search did not answer within {self.settings.query_timeout_seconds}s"
            ) from exc
        hits = []
        for hit in stored:
            indexed = self._indexed.get(hit.chunk.document)
            if indexed is None:  # not (yet) indexed by this process: the range stored with it
                chunk = hit.chunk
            elif hit.chunk.id in indexed.chunks:
                chunk = indexed.chunks[hit.chunk.id]
            else:  # edited away since; its deletion is on its way
                continue
            hits.append(
                SearchHit(chunk.document, chunk.start, chunk.end, hit.snippet, hit.score, chunk.field)
            )
        return hits


def _add(a: PassReport, b: PassReport) -> PassReport:
    return PassReport(
        a.documents + b.documents,
        a.embedded + b.embedded,
        a.moved + b.moved,
        a.deleted + b.deleted,
        a.skipped + b.skipped,
    )
