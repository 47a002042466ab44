"""Building the search index the hub runs: MiniLM embeddings in a chromadb collection."""

from __future__ import annotations

from persistence.base import Store
from persistence.index.base import TextSealer
from persistence.index.chroma import DEFAULT_COLLECTION, ChromaChunkStore
from persistence.index.embedding import THREADS, MiniLMEmbedding
from persistence.index.indexer import IndexerSettings, SearchIndexer


def open_search_index(
    store: Store,
    location: str,
    settings: IndexerSettings | None = None,
    *,
    collection: str = DEFAULT_COLLECTION,
    embedding_threads: int = THREADS,
    sealer: TextSealer | None = None,
) -> SearchIndexer:
    """``location``: a directory for embedded chromadb, or ``http://host:port`` of a server.

    Loads and checks the embedding model now (raises ModelIntegrityError if it is missing
    or not the pinned file); connects to chromadb only when first used, so a server that
    is down delays search, not the hub's start.
    """
    embedding = MiniLMEmbedding(threads=embedding_threads)
    settings = settings or IndexerSettings()
    if settings.chunking.max_tokens > embedding.max_tokens:
        raise ValueError(
            f"chunks of {settings.chunking.max_tokens} tokens exceed the model's {embedding.max_tokens}"
        )
    chunks = ChromaChunkStore(location, embedding, collection, sealer)
    return SearchIndexer(store, chunks, settings, count_tokens=embedding.count_tokens)
