"""Change events on a real Kafka broker (KRaft, started once per session) from a real hub.

Every stored update arrives on the topic in order per document, keyed by document; a
consumer that replays the updates, or applies the text deltas, rebuilds each document's
text equal to the hub's; suggestions and restores produce their own events; each envelope
matches the versioned JSON schema.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from collab_server.client import YClient
from collab_server.events.envelope import schema
from tests.support.events import (
    TopicReader,
    apply_delta,
    assert_in_order_without_gaps,
    changed_by_document,
    new_topic,
    replay_text,
    stored_seqs,
)
from tests.support.hub import HubProcess
from tests.support.node import NodeClients
from tests.support.services import KafkaServer

DOCUMENTS = ("alpha.md", "beta.py", "gamma.txt")


def covered_seqs(events: list[dict[str, Any]], stored: list[int]) -> list[int]:
    return [seq for seq in stored if any(e["seq"]["first"] <= seq <= e["seq"]["last"] for e in events)]


async def type_text(client: YClient, tag: str, count: int) -> None:
    for i in range(count):
        if i % 7 == 6 and len(str(client.text)) > 3:
            del client.text[1:3]
        else:
            client.text.insert(min(i, len(str(client.text))), f"{tag}{i} ")
        await asyncio.sleep(0.005)  # paces a typist; completion is awaited through the topic


async def test_every_stored_update_reaches_the_topic_in_order_and_replays_to_the_hubs_text(
    tmp_path: Path, kafka_server: KafkaServer
) -> None:
    topic = new_topic()
    hub = HubProcess(tmp_path, events_kafka_brokers=kafka_server.bootstrap, events_kafka_topic=topic).start()
    try:
        async with TopicReader(kafka_server, topic) as reader, contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(YClient(hub.url(doc) + f"?actor=py{i}"))
                for doc in DOCUMENTS
                for i in range(2)
            ]
            for client in clients:
                await client.wait_synced()
            nodes = await stack.enter_async_context(NodeClients())
            await nodes.open("js", hub.ws, DOCUMENTS[0], actor="js")
            typing = [type_text(client, f"c{n}.", 25) for n, client in enumerate(clients)]

            async def js_types() -> None:
                for i in range(20):
                    await nodes.call("insert", client="js", index=0, text=f"j{i}")

            await asyncio.gather(*typing, js_types())

            # Suggestion made and accepted over HTTP, then a restore: their own events.
            async with httpx.AsyncClient(base_url=hub.http, timeout=10) as http:
                made = await http.post(
                    f"/api/documents/{DOCUMENTS[1]}/suggestions",
                    json={"actor": "agent:bot", "edits": [{"start": 0, "end": 0, "text": "# "}]},
                )
                assert made.status_code == 200, made.text
                suggestion = made.json()["suggestion"]["id"]
                accepted = await http.post(
                    f"/api/documents/{DOCUMENTS[1]}/suggestions/{suggestion}/accept", json={"actor": "ada"}
                )
                assert accepted.status_code == 200, accepted.text
                history = (await http.get(f"/api/documents/{DOCUMENTS[2]}/history")).json()["versions"]
                restored = await http.post(
                    f"/api/documents/{DOCUMENTS[2]}/restore", json={"seq": history[-1]["seq"], "actor": "ops"}
                )
                assert restored.status_code == 200, restored.text

            def replayed(events: list[dict[str, Any]]) -> bool:
                by_doc = changed_by_document(events)
                return all(replay_text(by_doc.get(doc, [])) == hub.text(doc) for doc in DOCUMENTS)

            await reader.wait_for(replayed, 30, "every document replayed from the topic")
            await reader.wait_for(
                lambda events: any(e["type"] == "document.restored" for e in events), 10, "document.restored"
            )
            texts = {doc: hub.text(doc) for doc in DOCUMENTS}
            activity = {doc: stored_seqs(hub.store, doc) for doc in DOCUMENTS}
            async with httpx.AsyncClient(base_url=hub.http, timeout=10) as http:
                deleted = await http.delete(f"/api/documents/{DOCUMENTS[2]}")
                assert deleted.status_code == 200, deleted.text
                revoked = await http.post("/api/admin/revoke", json={"jti": "token-123"})
                assert revoked.status_code == 200, revoked.text
            await reader.wait_for(
                lambda events: {"document.deleted", "access.revoked"} <= {e["type"] for e in events},
                10,
                "document.deleted and access.revoked",
            )

        events = reader.events
        validator = jsonschema.Draft202012Validator(schema())
        for event in events:
            validator.validate(event)
        assert all(key == (event["document"] or "") for key, event in zip(reader.keys, events, strict=True))
        assert_in_order_without_gaps(events)
        by_doc = changed_by_document(events)
        for doc in DOCUMENTS:
            stored = activity[doc]
            # Nothing stored is missing, nothing unstored is described (per-keystroke mode: one each).
            assert [e["seq"]["last"] for e in by_doc[doc]] == stored
            assert covered_seqs(by_doc[doc], stored) == stored
            text = ""
            for event in by_doc[doc]:
                text = apply_delta(text, event["data"]["delta"].get("content", []))
            assert text == texts[doc], f"{doc}: deltas rebuild a different text"
            created = [e for e in events if e["type"] == "document.created" and e["document"] == doc]
            assert len({e["id"] for e in created}) == 1 and created[0]["seq"]["first"] == stored[0]
        actors = {actor for e in by_doc[DOCUMENTS[0]] for actor in e["actors"]}
        assert {"py0", "py1", "js"} <= actors
        types = [(e["type"], e["document"]) for e in events]
        assert ("suggestion.created", DOCUMENTS[1]) in types
        assert ("suggestion.accepted", DOCUMENTS[1]) in types
        assert ("document.restored", DOCUMENTS[2]) in types
        assert ("document.deleted", DOCUMENTS[2]) in types
        revocation = next(e for e in events if e["type"] == "access.revoked")
        assert revocation["document"] is None and "token-123" in revocation["data"]["detail"]
    finally:
        hub.stop()
