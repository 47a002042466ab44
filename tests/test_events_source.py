"""ChangeSource: stored log rows → event envelopes (in-process, on the reference memory store)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pycrdt
import pytest

import crdt_core
from collab_server.events.source import SUGGESTIONS_FIELD, ChangeSource
from persistence.base import LogEntry
from persistence.memory import MemoryStore
from tests.fast.peers import typed
from tests.support.events import apply_delta

pytestmark = pytest.mark.fast  # in-process, on the memory store

Doc = pycrdt.Doc[Any]


def recording(doc: Doc) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


async def store_with(updates: list[bytes], stamps: list[float] | None = None) -> MemoryStore:
    store = MemoryStore()
    now = time.time() - 60
    for i, update in enumerate(updates):
        await store.append([LogEntry("doc", update, f"u{i % 2}", "node-a", stamps[i] if stamps else now + i)])
    return store


def text_after(updates: list[str]) -> str:
    doc: Doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    for update in updates:
        doc.apply_update(base64.b64decode(update))
    return str(text)


async def test_one_event_per_stored_update_with_deltas_and_a_created_event() -> None:
    doc: Doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates = recording(doc)
    text += "hello"
    text.insert(5, " world")
    del text[0:1]
    source = ChangeSource(await store_with(updates))
    batch = await source.next_batch("doc", 0)
    assert batch is not None
    kinds = [e.type for e in batch.events]
    assert kinds == ["document.created"] + ["document.changed"] * 3
    changed = batch.events[1:]
    assert [e.id for e in changed] == [f"doc@{s}" for s in (1, 2, 3)] and batch.cursor == 3
    rebuilt = ""
    for event in changed:
        rebuilt = apply_delta(rebuilt, event.data["delta"]["content"])
        assert event.data["fields"] == ["content"] and event.data["updates"] == 1
    assert rebuilt == "ello world" == text_after([e.data["update"] for e in changed])
    assert await source.next_batch("doc", 3) is None


async def test_coalescing_window_merges_and_gives_the_same_id_again() -> None:
    updates, _ = typed(("a", "b", "c", "d"))
    base = time.time() - 60
    store = await store_with(updates, [base, base + 0.1, base + 0.2, base + 5])  # window 0.5 s
    first = await ChangeSource(store, window_seconds=0.5).next_batch("doc", 0)
    again = await ChangeSource(store, window_seconds=0.5).next_batch("doc", 0)
    assert first is not None and again is not None
    changed = [e for e in first.events if e.type == "document.changed"]
    assert [(e.id, e.first_seq, e.last_seq, e.data["updates"]) for e in changed] == [("doc@3", 1, 3, 3)]
    assert [e.encode() for e in first.events] == [e.encode() for e in again.events]
    assert text_after([changed[0].data["update"]]) == "abc"
    assert changed[0].actors == ("u0", "u1")
    # The last row's window is still open: nothing yet.
    fresh = await store_with(updates, [time.time()] * 4)
    assert await ChangeSource(fresh, window_seconds=30).next_batch("doc", 0) is None


async def test_updates_compacted_before_publication_become_one_summary() -> None:
    updates, _ = typed(("one ", "two ", "three ", "four "))
    store = await store_with(updates)
    source = ChangeSource(store, max_rows=2)
    first = await source.next_batch("doc", 0)
    assert first is not None and first.cursor == 2
    assert await store.compact("doc", crdt_core.merge_updates) is not None  # past the cursor
    summary = await source.next_batch("doc", first.cursor)
    assert summary is not None and summary.cursor == 4
    [event] = summary.events
    assert event.data["summary"] and (event.first_seq, event.last_seq, event.data["updates"]) == (3, 4, 2)
    published = [e.data["update"] for e in first.events if e.type == "document.changed"]
    assert text_after([*published, event.data["update"]]) == "one two three four "
    assert apply_delta("one two ", event.data["delta"]["content"]) == "one two three four "
    # Without the state at the cursor (a restart), the summary carries the merged state.
    cold = await ChangeSource(store).next_batch("doc", first.cursor)
    assert cold is not None and cold.events[0].data["delta"] is None
    assert text_after([cold.events[0].data["update"]]) == "one two three four "


async def test_suggestion_changes_become_suggestion_events() -> None:
    doc: Doc = pycrdt.Doc()
    suggestions = doc.get(SUGGESTIONS_FIELD, type=pycrdt.Map)
    updates = recording(doc)
    suggestions["s1"] = json.dumps({"id": "s1", "status": "open"})
    suggestions["s1"] = json.dumps({"id": "s1", "status": "rejected"})
    batch = await ChangeSource(await store_with(updates)).next_batch("doc", 0)
    assert batch is not None
    kinds = [(e.type, e.id) for e in batch.events]
    assert ("suggestion.created", "doc@1/suggestion.created/s1") in kinds
    assert ("suggestion.rejected", "doc@2/suggestion.rejected/s1") in kinds
    changed = [e for e in batch.events if e.type == "document.changed"]
    assert changed[0].data["fields"] == [SUGGESTIONS_FIELD]


async def test_documents_with_unpublished_updates_are_reported_for_the_tiering_hold() -> None:
    """Tiering (which removes a cold document's rows) skips what a sink has not published."""
    from prometheus_client import CollectorRegistry

    from collab_server.events.publisher import EventPublisher, PublisherOptions
    from collab_server.events.webhooks import Endpoint, RetryPolicy, WebhookSink

    doc: Doc = pycrdt.Doc()
    updates = recording(doc)
    doc.get("content", type=pycrdt.Text).insert(0, "x")
    store = await store_with(updates)
    sink = WebhookSink(Endpoint("a", "http://127.0.0.1:9/", "s"), store, None, RetryPolicy())  # type: ignore[arg-type]
    publisher = EventPublisher(store, [sink], PublisherOptions(node_id="n"), CollectorRegistry())
    assert await publisher.unpublished_documents() == {"doc"}
    await store.advance_event_cursors(sink.name, {"doc": 1})
    assert await publisher.unpublished_documents() == set()
