"""ChromaChunkStore: the ChunkStore port on chromadb, embedded or as a client of a server.

``location`` chooses the client: ``http://host:port`` (or ``https://``) talks to a chromadb
server; anything else is a directory for the embedded ``PersistentClient``. The
collection uses cosine distance and is always opened with our own embedding function
(chromadb's default one downloads a model at first use). Telemetry is off.

Each chunk is one record: id, the chunk's text as the record's document, and metadata
``{"document", "start", "end"}`` (its range when added). The cosine distance chromadb
returns is turned into a similarity score, ``1 - distance``. Every chromadb failure leaves this module as
IndexUnavailable (chained to the original error); all methods block, so callers run
them in a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.collection_configuration import CreateHNSWConfiguration
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, Embeddable, EmbeddingFunction, Metadata
from chromadb.config import Settings

from persistence.index.base import (
    DEFAULT_FIELD,
    IndexUnavailable,
    NewChunk,
    StoredChunk,
    StoredHit,
    TextSealer,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_COLLECTION = "nova-chunks"
WRITE_BATCH = 256  # records per upsert call

# HNSW graph settings of a new collection. chromadb's defaults (ef_search 100,
# ef_construction 100, 16 neighbours) missed true nearest neighbours on MiniLM vectors of
# a 2,000-chunk corpus (recall@10 0.99 on average, 0.7 at worst; a query far from every
# cluster, such as a freshly added topic, is the typical miss). These found all of them
# (recall@10 1.0 over 130 queries) at ~1 ms more per query; see load_tests/bench_search.py.
HNSW = CreateHNSWConfiguration(space="cosine", ef_search=400, ef_construction=200, max_neighbors=32)


def is_server_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


class ChromaChunkStore:
    def __init__(
        self,
        location: str,
        embedding: EmbeddingFunction[Documents],
        collection: str = DEFAULT_COLLECTION,
        sealer: TextSealer | None = None,
    ) -> None:
        """``sealer``: with encryption at rest, chunk text is kept encrypted (embeddings are
        computed here from the plain text, so chromadb never sees it)."""
        self.sealer = sealer
        self.location = location
        self.embedding = embedding
        self.collection_name = collection
        self._client: ClientAPI | None = None
        self._collection: Collection | None = None
        self._lock = threading.Lock()  # guards connecting, not the calls themselves

    def __repr__(self) -> str:
        return f"ChromaChunkStore({self.location!r}, collection={self.collection_name!r})"

    def _connect(self) -> ClientAPI:
        settings = Settings(anonymized_telemetry=False)
        if is_server_url(self.location):
            url = urlsplit(self.location)
            if not url.hostname:
                raise ValueError(f"no host in chromadb URL {self.location!r}")
            https = url.scheme == "https"
            port = url.port or (443 if https else 80)
            return chromadb.HttpClient(host=url.hostname, port=port, ssl=https, settings=settings)
        return chromadb.PersistentClient(path=self.location, settings=settings)

    def open(self) -> None:
        self._call("open", lambda: None)

    def _ensure(self) -> Collection:
        with self._lock:
            if self._collection is None:
                client = self._client or self._connect()
                self._client = client
                self._collection = client.get_or_create_collection(
                    self.collection_name,
                    # chromadb's signature wants the function over any embeddable; ours takes text.
                    embedding_function=cast("EmbeddingFunction[Embeddable]", self.embedding),
                    configuration={"hnsw": HNSW},
                )
                space = (self._collection.configuration.get("hnsw") or {}).get("space")
                if space != "cosine":
                    self._collection = None
                    raise IndexUnavailable(
                        f"collection {self.collection_name!r} at {self.location} uses {space!r} space,"
                        " not cosine; delete it to re-index"
                    )
            return self._collection

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            self._ensure()
            return operation()
        except IndexUnavailable:
            raise
        except Exception as exc:
            # chromadb reports an unreachable server as ValueError, failed requests as
            # httpx or chromadb errors, a broken local store as its own errors: to the
            # hub they all mean "search is unavailable for now".
            with self._lock:
                if is_server_url(self.location):
                    self._collection = None  # reconnect next time
            raise IndexUnavailable(f"chromadb at {self.location}: {what} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._collection = None
            self._client = None

    def chunks_of(self, document: str) -> list[StoredChunk]:
        def run() -> list[StoredChunk]:
            got = self._ensure().get(where={"document": document}, include=["metadatas"])
            return [_stored(i, m) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)]

        return self._call(f"reading the chunks of {document!r}", run)

    def add(self, chunks: Sequence[NewChunk]) -> None:
        def run() -> None:
            collection = self._ensure()
            for first in range(0, len(chunks), WRITE_BATCH):
                batch = chunks[first : first + WRITE_BATCH]
                metadatas: list[Metadata] = [
                    {"document": c.document, "field": c.field, "start": c.start, "end": c.end} for c in batch
                ]
                if self.sealer is None:
                    collection.upsert(
                        ids=[c.id for c in batch], documents=[c.text for c in batch], metadatas=metadatas
                    )
                else:
                    sealer = self.sealer
                    collection.upsert(
                        ids=[c.id for c in batch],
                        embeddings=self.embedding([c.text for c in batch]),
                        documents=[sealer.seal(c.document, c.text) for c in batch],
                        metadatas=metadatas,
                    )

        if chunks:
            self._call(f"adding {len(chunks)} chunks", run)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._call(f"deleting {len(ids)} chunks", lambda: self._ensure().delete(ids=list(ids)))

    def query(self, text: str, limit: int) -> list[StoredHit]:
        def run() -> list[StoredHit]:
            got = self._ensure().query(
                query_texts=[text], n_results=limit, include=["documents", "metadatas", "distances"]
            )
            ids = got["ids"][0]
            documents = (got["documents"] or [[]])[0]
            metadatas = (got["metadatas"] or [[]])[0]
            distances = (got["distances"] or [[]])[0]
            hits = []
            for i, snippet, meta, distance in zip(ids, documents, metadatas, distances, strict=True):
                chunk = _stored(i, meta)
                plain = snippet if self.sealer is None else self.sealer.open(chunk.document, snippet)
                if plain is not None:  # None: the document was erased (its key is gone)
                    hits.append(
                        StoredHit(chunk, plain, 1.0 - float(distance))
                    )  # cosine distance = 1 - similarity
            return hits

        return self._call("query", run)

    def count(self) -> int:
        return self._call("count", lambda: self._ensure().count())


def _stored(record_id: str, meta: Any) -> StoredChunk:
    # Chunks stored before fields existed carry no "field": they are the default text's.
    field = str(meta.get("field", DEFAULT_FIELD))
    return StoredChunk(record_id, str(meta["document"]), int(meta["start"]), int(meta["end"]), field)
