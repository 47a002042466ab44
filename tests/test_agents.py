"""Agents as collaborators: the SDK next to a real yjs human, HTTP edits that rebase, suggestions, presence."""

from __future__ import annotations

import time

import httpx

from collab_server.agent import AgentSession
from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.node import NodeClients
from tests.support.waiting import eventually


def post(hub: HubProcess, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{hub.http}/api/documents/{path}", json=body, timeout=10)


async def test_sdk_agent_and_yjs_human_co_edit(hub: HubProcess) -> None:
    async with NodeClients() as human:
        await human.open("ada", hub.ws, "pair.md")
        await human.call("insert", client="ada", index=0, text="# Plan\nteh first step\n")
        async with AgentSession(hub.ws, "pair.md", name="Fixer", model="tiny-1") as agent:
            await agent.wait_until(lambda text: "first step" in text)
            peers = {}

            async def agent_visible() -> bool:
                nonlocal peers
                peers = await human.call("peers", client="ada")
                return any(p.get("user", {}).get("kind") == "agent" for p in peers.values())

            deadline = time.monotonic() + 5
            while not await agent_visible():
                assert time.monotonic() < deadline, f"agent presence never reached the human: {peers}"
            # Concurrent: the human types at the end while the agent fixes a typo in the middle.
            await human.call(
                "insert", client="ada", index=len("# Plan\nteh first step\n"), text="second step\n"
            )
            agent.replace_all(agent.text.replace("teh", "the"))
            agent.set_cursor(7, 3)
            expected = "# Plan\nthe first step\nsecond step\n"
            await agent.wait_until(lambda text: text == expected)
            await human.call("wait_text", client="ada", text=expected)
        # The agent left: its presence disappears for the human.
        deadline = time.monotonic() + 5
        while await agent_visible():
            assert time.monotonic() < deadline, "agent presence lingered after it left"
    activity = hub.get("/api/documents/pair.md/activity").json()["activity"]
    assert "agent:Fixer" in {entry["actor"] for entry in activity}


async def test_http_edit_against_an_old_version_lands_where_meant(hub: HubProcess) -> None:
    async with YClient(hub.url("spec")) as human:
        await human.wait_synced()
        human.text += "The cache keeps entries for ten minutes."
        await eventually(lambda: hub.text("spec") == "The cache keeps entries for ten minutes.")
        read = hub.get("/api/documents/spec/text").json()
        version = read["version"]
        # The human types before the agent's target after the agent read the text.
        human.text.insert(0, "Note: ")
        await eventually(lambda: hub.text("spec").startswith("Note: "))
        response = post(
            hub,
            "spec/edits",
            {
                "version": version,
                "actor": "agent:editor",
                "edits": [{"find": "ten minutes", "replace": "one hour"}],
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["text"] == "Note: The cache keeps entries for one hour."
        await human.wait_for(lambda c: str(c.text) == "Note: The cache keeps entries for one hour.")

        # A range edit whose target the human has deleted meanwhile is refused, nothing applied.
        stale = hub.get("/api/documents/spec/text").json()["version"]
        start = human.text.to_py().index("cache")
        human.text.__delitem__(slice(start, start + len("cache ")))
        await eventually(lambda: "cache" not in hub.text("spec"))
        before = hub.text("spec")
        target = "Note: The cache keeps".index("cache")
        conflict = post(
            hub,
            "spec/edits",
            {"version": stale, "edits": [{"start": target, "end": target + 5, "text": "store"}]},
        )
        assert conflict.status_code == 409
        body = conflict.json()["error"]
        assert body["code"] == "conflict" and body["range"] == {"start": target, "end": target + 5}
        assert body["expected"] == "cache"
        assert hub.text("spec") == before
    actors = {a["actor"] for a in hub.get("/api/documents/spec/activity").json()["activity"]}
    assert "agent:editor" in actors


async def test_whole_new_text_keeps_concurrent_human_edits(hub: HubProcess) -> None:
    async with YClient(hub.url("essay")) as human:
        await human.wait_synced()
        human.text += "alpha beta gamma"
        await eventually(lambda: hub.text("essay") == "alpha beta gamma")
        version = hub.get("/api/documents/essay/text").json()["version"]
        human.text += " delta"
        await eventually(lambda: hub.text("essay").endswith("delta"))
        response = post(hub, "essay/edits", {"version": version, "text": "ALPHA beta gamma"})
        assert response.status_code == 200, response.text
        assert response.json()["text"] == "ALPHA beta gamma delta"


async def test_suggestions_submit_list_accept_reject(hub: HubProcess) -> None:
    async with YClient(hub.url("review")) as human:
        await human.wait_synced()
        human.text += "Ship on Friday. Tests pass."
        await eventually(lambda: hub.text("review") == "Ship on Friday. Tests pass.")
        version = hub.get("/api/documents/review/text").json()["version"]
        first = post(
            hub,
            "review/suggestions",
            {
                "version": version,
                "actor": "agent:pm",
                "model": "planner-2",
                "edits": [{"find": "Friday", "replace": "Monday"}],
            },
        )
        second = post(
            hub,
            "review/suggestions",
            {
                "version": version,
                "actor": "agent:qa",
                "edits": [{"find": "Tests pass.", "replace": "Tests fail."}],
            },
        )
        assert first.status_code == 200 and second.status_code == 200
        assert hub.text("review") == "Ship on Friday. Tests pass."  # suggestions are not applied
        listed = httpx.get(f"{hub.http}/api/documents/review/suggestions").json()["suggestions"]
        assert [s["author"] for s in listed] == ["agent:pm", "agent:qa"]
        assert [s.get("model") for s in listed] == ["planner-2", None]  # the model the caller names
        bad_model = post(hub, "review/suggestions", {"version": version, "model": 5, "text": "x"})
        assert bad_model.status_code == 400, bad_model.text
        human.text.insert(0, "Plan: ")
        await eventually(lambda: hub.text("review").startswith("Plan: "))
        accepted = post(
            hub, f"review/suggestions/{first.json()['suggestion']['id']}/accept", {"actor": "human:lead"}
        )
        assert accepted.status_code == 200, accepted.text
        await human.wait_for(lambda c: str(c.text) == "Plan: Ship on Monday. Tests pass.")
        rejected = post(
            hub, f"review/suggestions/{second.json()['suggestion']['id']}/reject", {"actor": "human:lead"}
        )
        assert rejected.status_code == 200
        assert hub.text("review") == "Plan: Ship on Monday. Tests pass."
        statuses = {
            s["author"]: s["status"]
            for s in httpx.get(f"{hub.http}/api/documents/review/suggestions").json()["suggestions"]
        }
        assert statuses == {"agent:pm": "accepted", "agent:qa": "rejected"}
        again = post(hub, f"review/suggestions/{first.json()['suggestion']['id']}/accept", {})
        assert again.status_code == 400


async def test_http_agent_presence_with_ttl(hub: HubProcess) -> None:
    async with YClient(hub.url("watched")) as human:
        await human.wait_synced()
        response = httpx.put(
            f"{hub.http}/api/documents/watched/presence",
            json={"agent": "indexer-1", "name": "Indexer", "model": "m", "ttl": 1.5, "cursor": {"index": 0}},
        )
        assert response.status_code == 200, response.text
        client_id = response.json()["client_id"]
        await human.wait_for(lambda c: c.presence.get(client_id, {}).get("user", {}).get("kind") == "agent")
        assert human.presence[client_id]["user"]["name"] == "Indexer"
        await human.wait_for(lambda c: client_id not in c.presence, timeout=6)


async def test_bad_edit_requests_get_clear_errors_and_change_nothing(hub: HubProcess) -> None:
    async with YClient(hub.url("guarded")) as human:
        await human.wait_synced()
        human.text += "stable text"
        await eventually(lambda: hub.text("guarded") == "stable text")
    version = hub.get("/api/documents/guarded/text").json()["version"]
    cases = [
        ({"version": version, "edits": [{"start": 5, "end": 500, "text": "x"}]}, 400, "invalid_edit"),
        (
            {
                "version": version,
                "edits": [{"start": 0, "end": 4, "text": "x"}, {"start": 2, "end": 6, "text": "y"}],
            },
            400,
            "invalid_edit",
        ),
        ({"version": version, "edits": [{"find": "missing", "replace": "x"}]}, 400, "invalid_edit"),
        ({"version": "not-a-token", "edits": [{"start": 0, "end": 1, "text": "x"}]}, 400, "invalid_version"),
        ({"version": version}, 400, "invalid_edit"),
    ]
    for body, status, code in cases:
        response = post(hub, "guarded/edits", body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (
            body,
            response.text,
        )
    malformed = httpx.post(f"{hub.http}/api/documents/guarded/edits", content=b"{oops")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    huge = httpx.post(f"{hub.http}/api/documents/guarded/edits", content=b"x" * 100_000)
    assert huge.status_code == 413
    unknown = post(
        hub, "no-such-doc/edits", {"version": version, "edits": [{"start": 0, "end": 0, "text": "x"}]}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "document_not_found"
    assert hub.get("/api/documents/no-such-doc/text").status_code == 404
    assert hub.text("guarded") == "stable text"
