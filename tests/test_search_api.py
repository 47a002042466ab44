"""Semantic search through the hub: documents edited live are found by meaning, by readers only."""

from __future__ import annotations

from pathlib import Path

import httpx

from collab_server.auth import mint
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

DOCUMENTS = {
    "garden.md": "Tomatoes need six hours of sun, steady watering and a stake to climb as they ripen.",
    "finance.md": "Quarterly revenue rose while operating costs fell, so the margin improved this year.",
    "travel.md": "The night train crosses the mountains and reaches the coast just after sunrise.",
}
SECRET = "search-test-secret-long-enough-for-hs256"


def search(hub: HubProcess, query: str, token: str) -> list[dict[str, object]]:
    response = httpx.get(f"{hub.http}/api/search", params={"q": query, "token": token}, timeout=30)
    if response.status_code == 503 and response.json()["error"]["code"] == "search_unavailable":
        return []  # the index is still opening (chromadb and the model load in the background)
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


async def test_live_documents_are_found_by_meaning_and_filtered_by_role(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, search="embedded", search_interval_seconds=0.5, auth_secret=SECRET).start()
    writer = mint(SECRET, "writer", [("*", "write")])
    gardener = mint(SECRET, "gardener", [("garden.md", "read")])
    try:
        for name, text in DOCUMENTS.items():
            response = httpx.post(
                f"{hub.http}/api/documents/{name}/edits",
                json={"text": text},
                headers={"authorization": f"Bearer {writer}"},
            )
            assert response.status_code == 200, response.text
        # Paraphrases that share no word with their answers.
        await eventually(
            lambda: (
                (search(hub, "growing vegetables outdoors", writer) or [{}])[0].get("document") == "garden.md"
            ),
            timeout=90,
            what="the garden note ranks first",
        )
        assert search(hub, "company profits", writer)[0]["document"] == "finance.md"
        assert search(hub, "rail journey by the sea", writer)[0]["document"] == "travel.md"
        # A reader sees hits only from documents it may read.
        assert {hit["document"] for hit in search(hub, "company profits", gardener)} <= {"garden.md"}
        # An edit changes what is found.
        httpx.post(
            f"{hub.http}/api/documents/travel.md/edits",
            json={"text": "Bake the bread at high heat until the crust turns golden."},
            headers={"authorization": f"Bearer {writer}"},
        )
        await eventually(
            lambda: search(hub, "cooking in the oven", writer)[0]["document"] == "travel.md",
            timeout=30,
            what="the edited document is found by its new meaning",
        )
        empty = httpx.get(f"{hub.http}/api/search", params={"q": " ", "token": writer})
        assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_query"
        assert httpx.get(f"{hub.http}/api/search", params={"q": "x"}).status_code == 401
    finally:
        hub.stop()
