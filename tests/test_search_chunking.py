"""Chunking for the search index (persistence/index/chunking.py): exact slices within the
limits, local edits change only nearby chunks, stable distinct ids. Pure functions, in process;
the model-token limit is tested with the model in tests/test_search_index.py."""

from __future__ import annotations

import random
import re

import pytest

from persistence.index.chunking import ChunkLimits, chunk_text
from persistence.index.indexer import chunk_ids

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


def prose(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    words = [
        *("hub", "document", "edit", "search", "index", "chunk", "model", "vector", "agent", "text"),
        *("node", "store", "update", "merge", "client", "server", "offline", "replica", "cursor"),
        *("history", "version", "snapshot", "presence", "stream"),
    ]

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(6, 18))).capitalize() + "."

    return "\n\n".join(" ".join(sentence() for _ in range(rng.randint(1, 4))) for _ in range(paragraphs))


def test_chunks_are_exact_slices_within_limits() -> None:
    text = prose(1, 40) + "\n" + "x" * 2500 + "\n\n   \n" + prose(2, 5)
    chunks = chunk_text(text)
    assert chunks
    limits = ChunkLimits()
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert len(chunk) <= limits.max_chars
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    # Every non-whitespace character belongs to exactly one chunk.
    covered = sum(len(re.sub(r"\s", "", c.text)) for c in chunks)
    assert covered == len(re.sub(r"\s", "", text))
    assert chunk_text("") == []
    assert chunk_text(" \n\n \t") == []


@pytest.mark.parametrize("layout", ["paragraphs", "lines", "one-line"])
def test_a_local_edit_changes_only_nearby_chunks(layout: str) -> None:
    base = prose(7, 60)
    text = {"paragraphs": base, "lines": base.replace("\n\n", "\n"), "one-line": base.replace("\n\n", " ")}[
        layout
    ]
    before = chunk_text(text)
    assert len(before) >= 10
    rng = random.Random(3)
    worst = 0
    for _ in range(40):
        at = rng.randrange(len(text))
        edited = (
            text[:at]
            + rng.choice(["word ", "New sentence here. ", "\n\n", ""])
            + text[at + rng.randint(0, 20) :]
        )
        after = chunk_text(edited)
        old = {c.digest for c in before}
        changed = [c for c in after if c.digest not in old]
        worst = max(worst, len(changed))
        # Chunks wholly before the edit are untouched.
        assert [c for c in after if c.end < at - 1000] == [c for c in before if c.end < at - 1000]
    assert worst <= 4, f"an edit changed {worst} chunks"


def test_repeated_text_gets_distinct_ids() -> None:
    paragraph = "The same boilerplate paragraph, repeated. " * 8
    text = "\n\n".join([paragraph] * 3)
    chunks = chunk_text(text)
    ids = chunk_ids("doc", chunks)
    assert len(set(ids)) == len(ids) == len(chunks)
    assert chunk_ids("doc", chunks) == ids  # stable
    assert set(chunk_ids("other", chunks)).isdisjoint(ids)  # per document
