"""Semantic search over the documents of a Store (chromadb + MiniLM; see indexer.py).

Importing this package is cheap: chromadb and the model load only with the modules that
need them (``factory``, ``chroma``, ``embedding``).
"""

from persistence.index.base import (
    ChunkStore,
    EmptyQuery,
    IndexUnavailable,
    ModelIntegrityError,
    SearchError,
    SearchHit,
    SearchIndex,
)

__all__ = [
    "ChunkStore",
    "EmptyQuery",
    "IndexUnavailable",
    "ModelIntegrityError",
    "SearchError",
    "SearchHit",
    "SearchIndex",
]
