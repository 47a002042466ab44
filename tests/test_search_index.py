"""Semantic search: chunking, incremental indexing, search quality, live edits, outages.

Plumbing tests (chunk counts, what gets embedded) use HashingEmbedding, a test double
with no notion of meaning. Search-quality and live-edit tests use the real MiniLM model
shipped in a PyPI package. chromadb is real everywhere: embedded in a temporary
directory, or an HttpClient pointed at a closed port for the outage case.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pycrdt
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from collab_server.api.context import STATE_KEY
from collab_server.api.search import search as search_endpoint
from persistence.base import LogEntry, Store
from persistence.index.base import EmptyQuery, IndexUnavailable, SearchHit
from persistence.index.chroma import ChromaChunkStore
from persistence.index.chunking import ChunkLimits, chunk_text
from persistence.index.embedding import MiniLMEmbedding
from persistence.index.indexer import IndexerSettings, SearchIndexer
from persistence.index.testing import HashingEmbedding
from persistence.memory import MemoryStore
from tests.support.waiting import eventually
from tests.test_search_chunking import prose

# -- helpers --------------------------------------------------------------------------


class EditedDocument:
    """A pycrdt document whose every edit is appended to a store as a real Yjs update."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.text = self.doc.get("content", type=pycrdt.Text)

    async def _commit(self, before: bytes) -> None:
        update = self.doc.get_update(before)
        await self.store.append([LogEntry(self.name, update, "test", "node-a", time.time())])

    async def insert(self, index: int, value: str) -> None:
        before = self.doc.get_state()
        self.text.insert(index, value)
        await self._commit(before)

    async def delete(self, start: int, end: int) -> None:
        before = self.doc.get_state()
        del self.text[start:end]
        await self._commit(before)

    def __str__(self) -> str:
        return str(self.text)


def free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def running(indexer: SearchIndexer) -> AsyncIterator[asyncio.Task[None]]:
    """Run the indexer as the hub does (a task it owns), cancel and await it at the end."""
    task = asyncio.create_task(indexer.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await indexer.close()


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedding:
    return MiniLMEmbedding()


# -- chunking within the model's token limit (pure chunking: tests/test_search_chunking.py)


def test_chunks_fit_the_model_with_a_token_counter(minilm: MiniLMEmbedding) -> None:
    # Markup is token-dense: 900 characters of it are far more than 256 tokens.
    rng = random.Random(4)
    markup = "\n".join(
        f"\\item $x_{{{rng.randint(0, 99)}}}^{{{rng.randint(0, 9)}}}$ see [ref](https://e.x/{rng.randint(0, 9999)})"
        for _ in range(300)
    )
    budget = ChunkLimits().max_tokens - 2  # [CLS] and [SEP]
    assert max(minilm.count_tokens([c.text for c in chunk_text(markup)])) > budget
    chunks = chunk_text(markup, count_tokens=minilm.count_tokens)
    assert max(minilm.count_tokens([c.text for c in chunks])) <= budget
    covered = sum(len(re.sub(r"\s", "", c.text)) for c in chunks)
    assert covered == len(re.sub(r"\s", "", markup))
    # One long "word" with no whitespace is cut too.
    blob = "x" * 5000
    assert (
        max(minilm.count_tokens([c.text for c in chunk_text(blob, count_tokens=minilm.count_tokens)]))
        <= budget
    )


# -- incremental indexing (test double) -------------------------------------------------


@pytest.fixture
def hashing() -> HashingEmbedding:
    return HashingEmbedding()


def hashing_indexer(store: Store, path: Path, embedding: HashingEmbedding, **settings: Any) -> SearchIndexer:
    chunks = ChromaChunkStore(str(path), embedding, collection="plumbing")
    return SearchIndexer(store, chunks, IndexerSettings(**settings))


async def test_only_changed_chunks_are_embedded_again(tmp_path: Path, hashing: HashingEmbedding) -> None:
    store = MemoryStore()
    doc = EditedDocument(store, "notes/big.md")
    await doc.insert(0, prose(11, 50))
    indexer = hashing_indexer(store, tmp_path / "chroma", hashing)
    async with indexer:
        first = await indexer.sync_once()
        total = len(chunk_text(str(doc)))
        assert total >= 10
        assert first.embedded == total == len(hashing.texts) == indexer.chunks.count()

        # No change: nothing is read from the model.
        assert (await indexer.sync_once()).documents == 0
        assert len(hashing.texts) == total

        # An edit in the middle re-embeds only the chunks around it.
        middle = len(str(doc)) // 2
        await doc.insert(middle, " Zanzibar marmalade appears here. ")
        report = await indexer.sync_once()
        assert 1 <= report.embedded <= 3
        assert any("Zanzibar" in t for t in hashing.texts[total:])
        assert indexer.chunks.count() == len(chunk_text(str(doc)))

        # Text inserted at the very top shifts every later chunk: their ranges move,
        # they are not embedded again.
        embedded = len(hashing.texts)
        await doc.insert(0, "Preface.\n\n")
        report = await indexer.sync_once()
        assert report.embedded <= 2
        assert report.moved >= total - 4
        assert len(hashing.texts) - embedded == report.embedded
        hits = await indexer.search("Zanzibar marmalade", 1)
        assert hits[0].document == "notes/big.md"
        assert "Zanzibar marmalade" in str(doc)[hits[0].start : hits[0].end]

        # Deleting most of the text deletes its chunks.
        await doc.delete(100, len(str(doc)))
        report = await indexer.sync_once()
        assert report.deleted >= total - 3
        assert indexer.chunks.count() == len(chunk_text(str(doc)))


async def test_a_restarted_indexer_embeds_nothing_already_stored(tmp_path: Path) -> None:
    store = MemoryStore()
    for n in range(3):
        await EditedDocument(store, f"doc-{n}").insert(0, prose(n, 12))
    first = HashingEmbedding()
    async with hashing_indexer(store, tmp_path / "chroma", first) as indexer:
        await indexer.sync_once()
    assert first.texts

    again = HashingEmbedding()
    async with hashing_indexer(store, tmp_path / "chroma", again) as indexer:
        report = await indexer.sync_once()
        assert report.documents == 3
        assert report.embedded == 0
        assert again.texts == []


async def test_indexes_from_sqlite_across_compaction(tmp_path: Path, hashing: HashingEmbedding) -> None:
    import crdt_core
    from persistence.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        doc = EditedDocument(store, "log.md")
        for n in range(5):
            await doc.insert(len(str(doc)), prose(100 + n, 3) + "\n\n")
        indexer = hashing_indexer(store, tmp_path / "chroma", hashing)
        async with indexer:
            first = await indexer.sync_once()
            assert first.embedded == len(chunk_text(str(doc)))
            # Compaction rewrites the log as a snapshot: same text, new seq, nothing to embed.
            assert await store.compact("log.md", crdt_core.merge_updates) is not None
            await doc.insert(0, "Kumquat preserves. ")
            report = await indexer.sync_once()
            assert 1 <= report.embedded <= 2
            hit = (await indexer.search("kumquat preserves", 1))[0]
            assert (hit.document, hit.start) == ("log.md", 0)
            assert hit.snippet.startswith("Kumquat preserves.")
    finally:
        await store.close()


async def test_search_endpoint_answers_and_reports_errors(tmp_path: Path, hashing: HashingEmbedding) -> None:
    store = MemoryStore()
    await EditedDocument(store, "recipes/jam.md").insert(0, "Apricot jam needs sugar and lemon.")
    await EditedDocument(store, "notes/other.md").insert(0, "Meeting notes about the quarterly budget.")
    indexer = hashing_indexer(store, tmp_path / "chroma", hashing)
    await indexer.sync_once()
    down = SearchIndexer(store, ChromaChunkStore(f"http://127.0.0.1:{free_closed_port()}", hashing))

    class Search:  # the `Search` port the endpoint depends on
        index: SearchIndexer = indexer

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {STATE_KEY: SimpleNamespace(search=Search)}  # the app state, with only what it reads

    app = Starlette(routes=[Route("/api/search", search_endpoint)], lifespan=lifespan)
    with TestClient(app) as client:
        ok = client.get("/api/search", params={"q": "apricot jam", "limit": 1})
        assert ok.status_code == 200, ok.text
        [hit] = ok.json()["results"]
        assert hit["document"] == "recipes/jam.md"
        assert hit["snippet"] == "Apricot jam needs sugar and lemon."
        assert (hit["start"], hit["end"]) == (0, len(hit["snippet"]))
        assert isinstance(hit["score"], float)

        for params in ({"q": ""}, {"q": "   "}, {}):
            bad = client.get("/api/search", params=params)
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "empty_query"
        for limit in ("0", "x", "1000"):
            bad = client.get("/api/search", params={"q": "jam", "limit": limit})
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "invalid_limit"

        Search.index = down
        unavailable = client.get("/api/search", params={"q": "jam"})
        assert unavailable.status_code == 503
        assert unavailable.json()["error"]["code"] == "search_unavailable"
    await indexer.close()
    await down.close()


# -- outages ------------------------------------------------------------------------------


async def test_chromadb_outage_is_index_unavailable_and_the_loop_survives(hashing: HashingEmbedding) -> None:
    store = MemoryStore()
    await EditedDocument(store, "doc").insert(0, "Some text to index.")
    url = f"http://127.0.0.1:{free_closed_port()}"
    indexer = SearchIndexer(
        store, ChromaChunkStore(url, hashing), IndexerSettings(interval_seconds=0.05, max_backoff_seconds=0.2)
    )
    with pytest.raises(IndexUnavailable, match=r"127\.0\.0\.1"):
        await indexer.search("anything", 5)
    with pytest.raises(IndexUnavailable):
        await indexer.sync_once()
    with pytest.raises(EmptyQuery):
        await indexer.search("  \n ", 5)

    async with running(indexer) as task:
        await eventually(lambda: indexer.failed_passes >= 3, timeout=10, what="three failed passes")
        assert not task.done()
        assert not indexer.available
        assert indexer.last_error is not None
        assert "127.0.0.1" in indexer.last_error
        assert indexer.indexed_seq("doc") is None


class ChromaServer:
    """A real chromadb server (its own CLI) on a loopback port, to stop and start at will."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChromaServer:
        command = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; sys.exit(app())"
        args = ["run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.path.with_suffix(".log"), "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", command, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"chroma exited: see {self.path.with_suffix('.log')}"
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "chroma server did not start within 30 s"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-server", free_closed_port()).start()
    yield server
    server.kill()


async def test_chromadb_server_by_url_survives_an_outage(
    chroma_server: ChromaServer, hashing: HashingEmbedding
) -> None:
    store = MemoryStore()
    doc = EditedDocument(store, "pantry.md")
    await doc.insert(0, "Apricot jam needs sugar and lemon.")
    indexer = SearchIndexer(
        store,
        ChromaChunkStore(chroma_server.url, hashing, collection="remote"),
        IndexerSettings(interval_seconds=0.1, max_backoff_seconds=0.4),
    )

    async def latest_seq() -> int:
        return next(info.last_seq for info in await store.list_documents() if info.name == "pantry.md")

    async with running(indexer) as task:
        seq = await latest_seq()
        await eventually(lambda: indexer.indexed_seq("pantry.md") == seq, what="indexed through the server")
        assert (await indexer.search("apricot jam", 1))[0].document == "pantry.md"

        chroma_server.kill()
        with pytest.raises(IndexUnavailable):
            await indexer.search("apricot jam", 1)
        await doc.insert(len(str(doc)), "\n\nBlueberry muffins need baking powder.")
        failed = indexer.failed_passes
        await eventually(lambda: indexer.failed_passes > failed, what="a failed pass during the outage")
        assert not indexer.available
        assert not task.done()

        chroma_server.start()  # same data directory, same port
        seq = await latest_seq()
        await eventually(
            lambda: indexer.indexed_seq("pantry.md") == seq, timeout=20, what="caught up after the outage"
        )
        assert indexer.available
        hit = (await indexer.search("blueberry muffins", 1))[0]
        assert "Blueberry muffins" in hit.snippet


# -- the real model ---------------------------------------------------------------------

# Short texts on unrelated topics, written for this test.
CORPUS = {
    "kitchen/sourdough.md": (
        "Sourdough starts with a starter: flour and water left on the counter until wild yeast "
        "and lactobacilli take hold. Feed it daily. Mix the dough, let it proof overnight in the "
        "fridge, then bake in a hot Dutch oven so the crust blisters."
    ),
    "garage/bicycle-chain.md": (
        "Wipe the chain with a rag, drip lubricant onto each roller while pedalling backwards, "
        "then wipe off the excess. A dry chain squeaks and wears the cassette and chainrings; "
        "replace it once a checker tool shows stretch beyond half a percent."
    ),
    "garden/succulents.md": (
        "Cacti and succulents store water in their leaves and stems. Soak the soil thoroughly, "
        "then wait until it is completely dry before the next soak. Soggy roots rot, so use a "
        "gritty mix and a pot with drainage holes."
    ),
    "money/taxes.md": (
        "Each April, file your return with the revenue service. Collect payslips, bank interest "
        "statements and receipts for deductible expenses. Filing late incurs penalties and "
        "interest on anything owed."
    ),
    "sky/eclipse.md": (
        "During a total solar eclipse the Moon passes exactly between Earth and the Sun, and "
        "its shadow sweeps across a narrow path. Only inside that path does daylight vanish and "
        "the corona appear; never look at the Sun without certified filters."
    ),
    "pets/puppy.md": (
        "Reward your puppy with a treat the instant it sits. Keep sessions to five minutes, "
        "always end on a success, and never punish accidents indoors; take it outside after "
        "every meal and nap instead."
    ),
    "health/burns.md": (
        "For a minor burn, hold the skin under cool running water for twenty minutes. Remove "
        "rings before swelling starts. Cover loosely with cling film; do not apply butter, ice "
        "or toothpaste. Seek care if blisters are larger than a palm."
    ),
    "music/guitar.md": (
        "New strings stretch, so retune often during the first days. Turn each peg slowly "
        "while plucking the string and compare with an electronic tuner, starting from the "
        "low E and working towards the high E."
    ),
}

# Each question shares no word at all with the document that answers it.
PARAPHRASES = {
    "natural leaven culture to make homemade loaves": "kitchen/sourdough.md",
    "keeping my cycle's drivetrain quiet": "garage/bicycle-chain.md",
    "how often should desert plants get irrigated?": "garden/succulents.md",
    "what's my deadline when sending income declarations to government?": "money/taxes.md",
    "why did our natural satellite hide sunshine?": "sky/eclipse.md",
    "teaching young dogs good manners": "pets/puppy.md",
    "first aid after scalding fingers": "health/burns.md",
    "getting my acoustic instrument back in pitch": "music/guitar.md",
}


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture
async def corpus_index(
    tmp_path: Path, minilm: MiniLMEmbedding
) -> AsyncIterator[tuple[SearchIndexer, MemoryStore]]:
    store = MemoryStore()
    for name, text in CORPUS.items():
        await EditedDocument(store, name).insert(0, text)
    indexer = SearchIndexer(
        store,
        ChromaChunkStore(str(tmp_path / "chroma"), minilm),
        # Unbounded busy share: these tests are about freshness, not the CPU bound (tested above).
        IndexerSettings(interval_seconds=0.2, max_busy_share=1.0),
        count_tokens=minilm.count_tokens,
    )
    async with indexer:
        yield indexer, store


@pytest.mark.parametrize("question", list(PARAPHRASES))
async def test_paraphrase_finds_the_right_document_first(
    corpus_index: tuple[SearchIndexer, MemoryStore], question: str
) -> None:
    indexer, _ = corpus_index
    answer = PARAPHRASES[question]
    assert words(question).isdisjoint(words(CORPUS[answer])), "the question must not share words"
    await indexer.sync_once()
    hits = await indexer.search(question, 3)
    assert hits[0].document == answer, hits
    assert hits[0].score > hits[1].score


async def test_an_edit_is_searchable_within_seconds(corpus_index: tuple[SearchIndexer, MemoryStore]) -> None:
    indexer, store = corpus_index
    question = "which rodent is sold as a household companion animal?"
    doc = EditedDocument(store, "pets/notes.md")
    await doc.insert(0, "Vaccinations for cats are due every year.\n\n")

    async with running(indexer):
        await eventually(lambda: indexer.indexed_seq("pets/notes.md") is not None, what="first indexing")
        before = await indexer.search(question, 1)
        assert before[0].document != "pets/notes.md" or "hamster" not in before[0].snippet

        edited_at = time.monotonic()
        addition = "Hamsters make good first pets for children: they are small, quiet and cheap to keep."
        await doc.insert(len(str(doc)), addition)
        assert words(question).isdisjoint(words(addition))
        found: list[SearchHit] = []

        async def found_it() -> bool:
            found[:] = await indexer.search(question, 1)
            return found[0].document == "pets/notes.md" and "Hamsters" in found[0].snippet

        deadline = edited_at + 5.0
        while not await found_it():
            assert time.monotonic() < deadline, f"edit not searchable within 5 s: {found}"
            await asyncio.sleep(0.05)
        hit = found[0]
        assert str(doc)[hit.start : hit.end] == hit.snippet


def test_the_model_file_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from persistence.index import embedding
    from persistence.index.base import ModelIntegrityError

    wrong = embedding.PinnedFile(
        embedding.MODEL_FILE.distribution, embedding.MODEL_FILE.version, embedding.MODEL_FILE.path, "0" * 64
    )
    with pytest.raises(ModelIntegrityError, match="sha256"):
        embedding.locate(wrong)
    missing = embedding.PinnedFile("no-such-distribution-here", "1.0", "x", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="install_models"):
        embedding.locate(missing)
    assert embedding.locate(embedding.TOKENIZER_FILE).name == "tokenizer.json"


def test_embeddings_are_unit_vectors_and_truncated(minilm: MiniLMEmbedding) -> None:
    import numpy as np

    long_text = "word " * 2000  # far beyond max_tokens: truncated, not an error
    vectors = np.array(minilm(["short", long_text, ""]))
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert minilm.get_config()["max_tokens"] == 256


async def test_run_defers_a_document_under_continuous_typing_until_quiet_or_stale(tmp_path: Path) -> None:
    """The background loop leaves a busy document for later; an explicit pass indexes it at once."""
    store = MemoryStore()
    doc = EditedDocument(store, "busy.md")
    await doc.insert(0, "The first words of a note.")
    hashing = HashingEmbedding()
    indexer = hashing_indexer(store, tmp_path / "chroma", hashing, max_staleness_seconds=3600.0)
    assert (await indexer.sync_once(defer_busy=True)).documents == 1  # never indexed: due at once
    await doc.insert(0, "More words typed just now. ")
    assert (await indexer.sync_once(defer_busy=True)).documents == 0  # changed within the interval
    assert (await indexer.sync_once()).documents == 1  # an explicit pass does not defer
    await doc.insert(0, "Still typing. ")
    stale = hashing_indexer(store, tmp_path / "chroma2", hashing, max_staleness_seconds=0.0)
    assert (await stale.sync_once(defer_busy=True)).documents == 1
    await doc.insert(0, "And more. ")
    assert (await stale.sync_once(defer_busy=True)).documents == 1  # stale at once: not deferred
    await indexer.close()
    await stale.close()


async def test_a_document_above_the_size_limit_is_skipped_not_rebuilt(tmp_path: Path) -> None:
    store = MemoryStore()
    small, large = EditedDocument(store, "small.md"), EditedDocument(store, "large.md")
    await small.insert(0, "A short note about apricot jam.")
    await large.insert(0, "A long chapter. " * 400)
    indexer = hashing_indexer(store, tmp_path / "chroma", HashingEmbedding(), max_document_bytes=2000)
    report = await indexer.sync_once()
    assert (report.documents, report.skipped) == (1, 1)
    assert indexer.indexed_seq("large.md") is not None  # known, so not retried at every poll
    assert (await indexer.sync_once()).documents == 0
    assert {hit.document for hit in await indexer.search("chapter", 5)} == {"small.md"}
    await indexer.close()
