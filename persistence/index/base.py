"""The search port: what the hub asks of a semantic index, and what an index asks of a vector store.

``SearchIndex`` is what the hub owns and serves ``GET /api/search`` from: ``run`` keeps the
index up to date until cancelled, ``search`` answers a query. ``ChunkStore`` is the seam
below it: one collection of text chunks with their embeddings (chromadb in ``chroma.py``).

Character ranges (``start``/``end``) are indices into the document's text as a Python
``str`` (Unicode code points), as of the version that was last indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class SearchError(Exception):
    """Base class of every error the search index raises."""


class IndexUnavailable(SearchError):
    """The vector store cannot be reached or failed (retry later); edits are not affected."""


class EmptyQuery(SearchError, ValueError):
    """The query has no searchable characters."""


class ModelIntegrityError(SearchError):
    """The embedding model or tokenizer file is missing or is not the pinned one."""


DEFAULT_FIELD = "content"  # the root Y.Text Nova's own clients edit


@dataclass(frozen=True, slots=True)
class SearchHit:
    document: str
    start: int
    end: int
    snippet: str
    score: float  # cosine similarity, higher is closer (1.0 = same direction)
    field: str = DEFAULT_FIELD  # the root type of the document the snippet is from


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as the vector store holds it: its id, owner document and character range.

    The range is where the chunk was when it was added; the indexer keeps the current
    ranges itself (text inserted above a chunk moves it without touching the store).
    """

    id: str
    document: str
    start: int
    end: int
    field: str = DEFAULT_FIELD  # the document's root type; offsets are in its plain text


@dataclass(frozen=True, slots=True)
class StoredHit:
    chunk: StoredChunk
    snippet: str  # the chunk's text
    score: float  # cosine similarity


@dataclass(frozen=True, slots=True)
class NewChunk:
    id: str
    document: str
    start: int
    end: int
    text: str
    field: str = DEFAULT_FIELD


class SearchIndex(Protocol):
    async def run(self) -> None:
        """Keep the index up to date until cancelled; never return or raise on an outage."""

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        """Closest chunks first; raise EmptyQuery or IndexUnavailable."""

    async def forget(self, document: str) -> int:
        """Remove every chunk of ``document`` now (erasure); return how many were removed."""


class TextSealer(Protocol):
    """Encrypts chunk text before the vector store keeps it (encryption at rest is on).

    Blocking: called from the chunk store's worker threads."""

    def seal(self, document: str, text: str) -> str: ...

    def open(self, document: str, sealed: str) -> str | None:
        """The text, or None when the document's key is gone (erased)."""


class ChunkStore(Protocol):
    """A collection of embedded chunks. Blocking: callers run these in a worker thread.

    Every method raises IndexUnavailable when the backing service fails.
    """

    def open(self) -> None:
        """Connect and get or create the collection."""

    def close(self) -> None: ...

    def chunks_of(self, document: str) -> list[StoredChunk]: ...

    def add(self, chunks: Sequence[NewChunk]) -> None:
        """Embed and store (idempotent: an existing id is overwritten)."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def query(self, text: str, limit: int) -> list[StoredHit]: ...

    def count(self) -> int: ...
