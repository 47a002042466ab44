"""Documents are more than one text: root fields of any Yjs binding, discovered, read, searched.

The documents are written by real providers (y-websocket and @hocuspocus/provider under node)
in the shapes the editor bindings write: y-codemirror.next and y-monaco a Y.Text named after
the editor, y-quill a formatted Y.Text, Tiptap / y-prosemirror a Y.XmlFragment ``default``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pycrdt
import pytest

from crdt_core.fields import FieldKind, field_kinds, live_kind, read_fields
from tests.support.hocuspocus import HocuspocusClients
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

TOPICS = {
    # binding: (document, text, paraphrased query sharing no content word with the text)
    "codemirror": (
        "notes/garden.ts",
        "Tomatoes need six hours of sun. Water them steadily and tie them to a stake as they ripen.",
        "growing vegetables outdoors",
    ),
    "monaco": (
        "notes/finance.ts",
        "Quarterly revenue rose while operating costs fell. The margin improved again this year.",
        "company profits",
    ),
    "prosemirror": (
        "notes/travel",
        "The night train. It crosses the mountains. It reaches the coast just after sunrise.",
        "rail journey by the sea",
    ),
    "quill": (
        "notes/bakery",
        "Bake the bread at high heat. Wait until the crust turns golden and crackles.",
        "cooking loaves in an oven",
    ),
}
FIELD = {"codemirror": "codemirror", "monaco": "monaco", "prosemirror": "default", "quill": "quill"}


def _rich_document() -> bytes:
    doc: pycrdt.Doc[object] = pycrdt.Doc()
    doc["code"] = pycrdt.Text("print('hi')")
    fragment = doc.get("default", type=pycrdt.XmlFragment)
    heading = fragment.children.append(pycrdt.XmlElement("heading", {"level": "1"}))
    heading.children.append(pycrdt.XmlText("Title"))
    paragraph = fragment.children.append(pycrdt.XmlElement("paragraph"))
    paragraph.children.append(pycrdt.XmlText("First line"))
    doc["meta"] = pycrdt.Map({"title": "Plan", "count": 3, "body": pycrdt.Text("map text")})
    doc["items"] = pycrdt.Array(["one", pycrdt.Text("two")])
    doc["nova:suggestions"] = pycrdt.Map({"x": "internal"})
    return doc.get_update()


@pytest.mark.fast
def test_every_root_type_is_discovered_and_read_as_plain_text() -> None:
    update = _rich_document()
    assert field_kinds(update) == {
        "code": FieldKind.TEXT,
        "default": FieldKind.XML,
        "meta": FieldKind.MAP,
        "items": FieldKind.ARRAY,
    }
    texts = {field.name: field.text for field in read_fields(update)}
    assert texts == {
        "code": "print('hi')",
        "default": "Title\nFirst line",
        "meta": "body: map text\ntitle: Plan",
        "items": "one\ntwo",
    }
    # Discovery never fixes a live document's root types: they stay readable as what they are.
    live: pycrdt.Doc[object] = pycrdt.Doc()
    live.apply_update(update)
    assert live_kind(live, "default") is FieldKind.XML and live_kind(live, "absent") is None
    assert str(live.get("default", type=pycrdt.XmlFragment)).startswith("<heading")


@pytest.fixture
async def providers() -> AsyncIterator[HocuspocusClients]:
    async with HocuspocusClients(3) as driver:
        yield driver


def _results(hub: HubProcess, query: str) -> list[dict[str, object]]:
    response = httpx.get(f"{hub.http}/api/search", params={"q": query}, timeout=30)
    if response.status_code == 503:
        return []  # the index is still opening
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


async def test_documents_of_four_bindings_are_searchable_and_readable_by_field(
    tmp_path: Path, providers: HocuspocusClients
) -> None:
    hub = HubProcess(tmp_path, search="embedded", search_interval_seconds=0.5).start()
    try:
        await providers.socket("tiptap", hub.ws)
        for binding, (document, text, _) in TOPICS.items():
            if binding == "prosemirror":  # Tiptap's way: a HocuspocusProvider
                await providers.open(binding, "tiptap", document)
            else:
                await providers.call("ws_open", client=binding, url=hub.ws, room=document)
            await providers.call("write_shape", client=binding, shape=binding, text=text)
        for binding, (document, _, query) in TOPICS.items():
            await eventually(
                lambda query=query, document=document: (
                    (_results(hub, query) or [{}])[0].get("document") == document
                ),
                timeout=120,
                what=f"{document} ({binding}) ranks first for {query!r}",
            )
            assert _results(hub, query)[0]["field"] == FIELD[binding]

        # The text API lists the fields and reads any of them; rich text reads as plain text.
        travel = hub.get("/api/documents/notes/travel/text?field=default").json()
        assert travel["kind"] == "xml" and travel["fields"] == [{"name": "default", "kind": "xml"}]
        assert (
            travel["text"]
            == "The night train\nIt crosses the mountains\nIt reaches the coast just after sunrise."
        )
        bakery = hub.get("/api/documents/notes/bakery/text?field=quill").json()
        assert bakery["kind"] == "text"
        assert bakery["text"].startswith("Bake the bread at high heat\nWait until the crust")
        # Only Y.Text fields take edits; the fragment is refused and left as it was.
        refused = httpx.post(
            f"{hub.http}/api/documents/notes/travel/edits", json={"field": "default", "text": "gone"}
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_a_text_field"
        assert hub.get("/api/documents/notes/travel/text?field=default").json()["text"] == travel["text"]
        edited = httpx.post(
            f"{hub.http}/api/documents/notes/garden.ts/edits",
            json={"field": "codemirror", "edits": [{"find": "six", "replace": "eight"}]},
        )
        assert edited.status_code == 200, edited.text
        await providers.call(
            "wait_text_field",
            client="codemirror",
            field="codemirror",
            text=TOPICS["codemirror"][1].replace("six", "eight"),
        )
        # History and versions list the fields and read a field as it was.
        history = hub.get("/api/documents/notes/travel/history").json()
        assert history["fields"] == [{"name": "default", "kind": "xml"}]
        first = history["versions"][-1]["seq"]
        version = hub.get(f"/api/documents/notes/travel/versions/{first}?field=default").json()
        assert version["kind"] == "xml" and version["text"] == travel["text"]
        activity = hub.get("/api/documents/notes/garden.ts/activity").json()
        assert activity["fields"] == [{"name": "codemirror", "kind": "text"}]
    finally:
        hub.stop()
