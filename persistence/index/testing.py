"""HashingEmbedding: a TEST DOUBLE for plumbing tests only. It has no notion of meaning.

Each word is hashed into one of a few dimensions (feature hashing), so texts that share
words get close vectors and paraphrases do not. It exists so tests of chunking,
incremental re-indexing and outages run in milliseconds and can count embedding calls.
Never use it for search quality: those tests use MiniLMEmbedding.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

DIMENSIONS = 64
_WORD = re.compile(r"\w+")


class HashingEmbedding(EmbeddingFunction[Documents]):
    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions
        self.calls = 0  # times the function was called
        self.texts: list[str] = []  # every text embedded, in order
        self._lock = threading.Lock()

    def __call__(self, input: Documents) -> Embeddings:
        with self._lock:
            self.calls += 1
            self.texts.extend(input)
        vectors: Embeddings = []
        for text in input:
            vector = np.zeros(self.dimensions, dtype=np.float32)
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vector[int.from_bytes(digest[:4], "big") % self.dimensions] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(vector))
            vectors.append((vector / norm if norm else np.ones(self.dimensions)).astype(np.float32))
        return vectors

    @staticmethod
    def name() -> str:
        return "nova-hashing-test-double"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        return HashingEmbedding(int(config.get("dimensions", DIMENSIONS)))


register_embedding_function(HashingEmbedding)  # type: ignore[no-untyped-call]
