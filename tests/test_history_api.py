"""History over HTTP: versions, past text, attribution, and restore seen live by clients."""

from __future__ import annotations

import httpx

from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually


async def test_versions_text_activity_and_live_restore(hub: HubProcess) -> None:
    async with (
        YClient(hub.url("story") + "?actor=alice") as alice,
        YClient(hub.url("story") + "?actor=bob") as bob,
        YClient(hub.url("story")) as watcher,
    ):
        for client in (alice, bob, watcher):
            await client.wait_synced()
        alice.text += "Once upon a time."
        await eventually(lambda: hub.text("story") == "Once upon a time.")
        alice_seq = hub.get("/api/documents/story/status").json()["last_persisted_seq"]
        bob.text += " The end."
        await eventually(lambda: hub.text("story") == "Once upon a time. The end.")

        versions = hub.get("/api/documents/story/history").json()["versions"]
        assert [v["seq"] for v in versions] == sorted((v["seq"] for v in versions), reverse=True)
        assert any(v["seq"] == alice_seq and v["actors"] == ["alice"] for v in versions)
        assert versions[0]["actors"] == ["bob"]

        past = hub.get(f"/api/documents/story/versions/{alice_seq}").json()
        assert past["text"] == "Once upon a time."

        actors = [a["actor"] for a in hub.get("/api/documents/story/activity").json()["activity"]]
        assert actors[:2] == ["bob", "alice"]

        response = httpx.post(
            f"{hub.http}/api/documents/story/restore", json={"seq": alice_seq, "actor": "carol"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["changed"] is True
        await watcher.wait_for(lambda c: str(c.text) == "Once upon a time.")
        await alice.wait_for(lambda c: str(c.text) == "Once upon a time.")
        # Nothing newer was destroyed: bob's version is still in the history and readable.
        after = hub.get("/api/documents/story/history").json()["versions"]
        assert after[0]["actors"] == ["carol"]
        bob_seq = versions[0]["seq"]
        assert (
            hub.get(f"/api/documents/story/versions/{bob_seq}").json()["text"] == "Once upon a time. The end."
        )


async def test_history_errors_are_clear(hub: HubProcess) -> None:
    missing = hub.get("/api/documents/nothing/versions/999")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_version"
    bad = httpx.post(f"{hub.http}/api/documents/x/restore", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
    no_seq = httpx.post(f"{hub.http}/api/documents/x/restore", json={"actor": "a"})
    assert no_seq.status_code == 400 and no_seq.json()["error"]["code"] == "invalid_request"
