"""Semantic search benchmark: indexing throughput, search latency, change-to-searchable time.

    python load_tests/bench_search.py [--chunks 2000] [--queries 200] [--edits 20] [--interval 2.0]

Builds a corpus of at least ``--chunks`` chunks, appends it to a Store as real Yjs
updates, and indexes it with the production path (MiniLM int8 ONNX embeddings into an
embedded chromadb in a temporary directory). Then it measures, in this order:

1. indexing throughput: chunks embedded and stored per second, first full pass;
2. search latency p50/p99 over ``--queries`` queries on the whole corpus;
3. change-to-searchable: with the indexer running as the hub runs it (polling every
   ``--interval`` seconds), the time from appending an edit that adds a new sentence to
   a document until a search for that sentence returns it. Expect about half the
   interval plus one re-index. Each trial inserts a paragraph on a topic foreign to the
   corpus, waits until a search for it finds it, then deletes it again (not timed).

Corpus: the final texts of the four editing traces in ``tests/data/editing-traces`` —
the editing-traces collection by Joseph Gentle and contributors (automerge-paper
prepared by Martin Kleppmann), CC BY 4.0 — plus documents generated from those texts'
word sequences (an order-2 word chain, fixed seed) until the chunk count is reached.
Everything runs locally; nothing is downloaded. Embedding ~2,000 chunks takes a few
CPU-minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pycrdt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load_tests.traces import trace_path
from persistence.base import LogEntry
from persistence.index.chunking import chunk_text
from persistence.index.embedding import THREADS, MiniLMEmbedding
from persistence.index.factory import open_search_index
from persistence.index.indexer import IndexerSettings
from persistence.memory import MemoryStore

TRACES = ("automerge-paper", "seph-blog1", "friendsforever", "clownschool")
ATTRIBUTION = (
    "corpus: editing-traces by Joseph Gentle and contributors "
    "(automerge-paper prepared by Martin Kleppmann), CC BY 4.0, plus text generated from them"
)


def trace_texts() -> dict[str, str]:
    texts = {}
    for name in TRACES:
        path = trace_path(name)
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            texts[f"traces/{name}"] = str(json.load(handle)["endContent"])
    return texts


def generated(texts: list[str], seed: int) -> Any:
    """Endless documents of ~4,000 characters in paragraphs, from an order-2 word chain."""
    chain: dict[tuple[str, str], list[str]] = defaultdict(list)
    for text in texts:
        words = re.findall(r"\S+", text)
        for a, b, c in zip(words, words[1:], words[2:], strict=False):
            chain[(a, b)].append(c)
    keys = list(chain)
    rng = random.Random(seed)
    while True:
        paragraphs: list[str] = []
        while sum(len(p) for p in paragraphs) < 4000:
            state = rng.choice(keys)
            words = list(state)
            for _ in range(rng.randint(30, 120)):
                options = chain.get(state)
                if not options:
                    state = rng.choice(keys)
                    options = chain[state]
                word = rng.choice(options)
                words.append(word)
                state = (state[1], word)
            paragraphs.append(" ".join(words))
        yield "\n\n".join(paragraphs)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


MISS_AFTER_SECONDS = 30.0  # an edit not found by then is reported as a miss

SHIPS = ("Albatross", "Kestrel", "Marigold", "Northern Star", "Perseverance", "Sea Lark")
COLOURS = ("brass", "copper", "green", "red", "tin", "white")
PORTS = ("Lisbon", "Valparaiso", "Zanzibar", "Bergen", "Halifax", "Batavia")


async def last_seq(store: MemoryStore, name: str) -> int:
    return next(info.last_seq for info in await store.list_documents() if info.name == name)


class Document:
    def __init__(self, store: MemoryStore, name: str) -> None:
        self.store, self.name = store, name
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.text = self.doc.get("content", type=pycrdt.Text)

    async def insert(self, index: int, value: str) -> None:
        before = self.doc.get_state()
        self.text.insert(index, value)
        update = self.doc.get_update(before)
        await self.store.append([LogEntry(self.name, update, "bench", "bench", time.time())])

    async def delete(self, start: int, end: int) -> None:
        before = self.doc.get_state()
        del self.text[start:end]
        update = self.doc.get_update(before)
        await self.store.append([LogEntry(self.name, update, "bench", "bench", time.time())])


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=2000, help="at least this many chunks in the corpus")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--interval", type=float, default=IndexerSettings().interval_seconds)
    parser.add_argument(
        "--threads", type=int, default=THREADS, help="onnxruntime threads per run (0: one per core)"
    )
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    print(ATTRIBUTION)
    counter = MiniLMEmbedding(threads=args.threads)
    store = MemoryStore()
    documents: dict[str, Document] = {}
    texts = trace_texts()
    total = 0
    source = generated(list(texts.values()), seed=1)
    while total < args.chunks:
        name = f"generated/{len(documents) - len(texts):04d}" if len(documents) >= len(texts) else ""
        if not name:
            name, text = next((n, t) for n, t in texts.items() if n not in documents)
        else:
            text = next(source)
        documents[name] = Document(store, name)
        await documents[name].insert(0, text)
        total += len(chunk_text(text, count_tokens=counter.count_tokens))
    print(
        f"corpus: {len(documents)} documents, {total} chunks, {sum(len(str(d.text)) for d in documents.values())} chars"
    )

    with tempfile.TemporaryDirectory(prefix="nova-bench-search-") as directory:
        indexer = open_search_index(
            store,
            str(Path(directory) / "chroma"),
            IndexerSettings(interval_seconds=args.interval),
            embedding_threads=args.threads,
        )
        chunks = indexer.chunks
        async with indexer:
            cpu, wall = time.process_time(), time.perf_counter()
            report = await indexer.sync_once()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            throughput = report.embedded / wall
            print(
                f"indexing: {report.embedded} chunks in {wall:.1f} s = {throughput:.1f} chunks/s"
                f" ({cpu / report.embedded * 1000:.0f} CPU-ms per chunk, {cpu:.0f} CPU-s in all)"
            )

            rng = random.Random(2)
            all_texts = [str(d.text) for d in documents.values()]
            queries = []
            for _ in range(args.queries):
                words = re.findall(r"\S+", rng.choice(all_texts))
                at = rng.randrange(max(1, len(words) - 8))
                queries.append(" ".join(words[at : at + rng.randint(3, 8)]))
            await indexer.search("warm-up", 5)
            latencies = []
            for query in queries:
                started = time.perf_counter()
                await indexer.search(query, 10)
                latencies.append(time.perf_counter() - started)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            print(
                f"search: {len(latencies)} queries, limit 10, over {chunks.count()} chunks: p50 {ms(p50)}, p99 {ms(p99)}"
            )

            delays: list[float] = []
            misses: list[str] = []
            task = asyncio.create_task(indexer.run())
            try:
                names = sorted(documents)
                for i in range(args.edits):
                    doc = documents[rng.choice(names)]
                    paragraph = (
                        f"The quartermaster of the {rng.choice(SHIPS)} counted {rng.randint(20, 90)}"
                        f" {rng.choice(COLOURS)} lanterns in the hold before the voyage to {rng.choice(PORTS)}."
                        " She wrote the tally in the logbook, checked every wick, and locked the storeroom."
                        " At dawn the bosun asked for six of them to hang along the rigging, and she signed"
                        " them out one by one, trimming each wick and topping up the oil before the crew"
                        " carried them aloft."
                    )
                    text = str(doc.text)
                    cut = text.find("\n\n", rng.randrange(len(text)))
                    at = cut if cut >= 0 else len(text)
                    # Land at a random point of the poll cycle.
                    await asyncio.sleep(rng.uniform(0, args.interval))
                    edited = time.perf_counter()
                    await doc.insert(at, f"\n\n{paragraph}")
                    while True:
                        hits = await indexer.search(paragraph, 10)
                        if any(h.document == doc.name and "quartermaster" in h.snippet for h in hits):
                            delays.append(time.perf_counter() - edited)
                            break
                        if time.perf_counter() - edited > MISS_AFTER_SECONDS:
                            # Counted, not timed; with what the chunk holding it scores.
                            holder = next(
                                c
                                for c in chunk_text(str(doc.text), count_tokens=counter.count_tokens)
                                if c.start <= at + 2 < c.end
                            )
                            query_vector, chunk_vector = counter([paragraph, holder.text])
                            misses.append(
                                f"edit {i}: indexed seq {indexer.indexed_seq(doc.name)},"
                                f" store seq {await last_seq(store, doc.name)}; its chunk: {len(holder)} chars,"
                                f" score {float(query_vector @ chunk_vector):.3f};"
                                f" 10th best {hits[-1].score:.3f}"
                            )
                            break
                        await asyncio.sleep(0.05)
                    # Take it out again, so the next trial's paragraph is the only one.
                    await doc.delete(at, at + len(paragraph) + 2)
                    seq = await last_seq(store, doc.name)
                    async with asyncio.timeout(60):
                        await indexer.wait_indexed(doc.name, seq)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            print(
                f"change to searchable: {len(delays)} edits, poll interval {args.interval} s:"
                f" p50 {ms(percentile(delays, 50))}, p99 {ms(percentile(delays, 99))}, max {ms(max(delays))};"
                f" not found among the 10 best within {MISS_AFTER_SECONDS:.0f} s: {len(misses)}"
            )
            for miss in misses:
                print(f"  miss: {miss}")

    figures = {
        "documents": len(documents),
        "chunks": report.embedded,
        "index_seconds": wall,
        "index_cpu_seconds": cpu,
        "chunks_per_second": throughput,
        "search_p50_ms": p50 * 1000,
        "search_p99_ms": p99 * 1000,
        "change_to_searchable_p50_ms": percentile(delays, 50) * 1000,
        "change_to_searchable_p99_ms": percentile(delays, 99) * 1000,
        "change_to_searchable_misses": len(misses),
        "interval_seconds": args.interval,
        "cpus": os.cpu_count(),
    }
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
