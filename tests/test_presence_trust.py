"""Presence integrity and memory bounds against a real hub with auth on and default limits.

Nobody speaks for someone else (owned client ids, the token's identity stamped into every
state, HTTP agents included), and one client cannot grow what peers receive or the hub
holds (presence caps, held-back updates), while large documents and pastes reach everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import crdt_core
from collab_server.auth import mint
from collab_server.client import YClient
from crdt_core import AwarenessEntry
from tests.support.hocuspocus import HocuspocusClients
from tests.support.hub import HubProcess, collab_cli
from tests.support.node import NodeClients
from tests.support.waiting import eventually, eventually_async

SECRET = "presence-test-secret-long-enough-for-hs256!"


def token(subject: str, role: str = "write", kind: str = "human") -> str:
    # Some are minted when the module is collected: they must outlive a whole (slow) suite run.
    return mint(SECRET, subject, [("*", role)], kind=kind, ttl_seconds=24 * 3600)


ADMIN = token("ops", "admin")


@pytest.fixture
def trusted_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """Auth on; every limit at its default."""
    process = HubProcess(tmp_path, auth_secret=SECRET).start()
    yield process
    process.stop()


async def raw_socket(hub: HubProcess, document: str, credential: str) -> ClientConnection:
    return await connect(f"{hub.url(document)}?token={credential}", compression=None, max_size=None)


async def next_of_kind(ws: ClientConnection, kind: crdt_core.MessageKind, timeout: float) -> bytes:
    """The payload of the next message of ``kind`` the hub sends this socket (others skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            data = await ws.recv()
            assert isinstance(data, bytes)
            message = crdt_core.parse_message(data)
            if message.kind is kind:
                return message.payload


async def refusal(ws: ClientConnection, timeout: float = 10.0) -> str:
    """The next permission-denied reason the hub sends this socket."""
    payload = await next_of_kind(ws, crdt_core.MessageKind.AUTH, timeout)
    return payload.decode("utf-8", errors="replace")


async def presence_answer(ws: ClientConnection, timeout: float = 10.0) -> dict[int, str]:
    """The next awareness message the hub sends this socket, as {client id: state}."""
    payload = await next_of_kind(ws, crdt_core.MessageKind.AWARENESS, timeout)
    return {e.client_id: e.state for e in crdt_core.decode_awareness(payload)}


async def close_of(ws: ClientConnection, timeout: float = 20.0) -> tuple[int | None, str]:
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    return ws.close_code, ws.close_reason or ""


def awareness(*entries: tuple[int, int, str]) -> bytes:
    return crdt_core.frame_awareness(crdt_core.encode_awareness([AwarenessEntry(*e) for e in entries]))


async def peer_state(js: NodeClients, client: str, client_id: int) -> dict[str, Any] | None:
    peers: dict[str, Any] = await js.call("peers", client=client)
    state = peers.get(str(client_id))
    return state if isinstance(state, dict) else None


async def test_nobody_can_rename_or_remove_a_colleague_and_names_come_from_tokens(
    trusted_hub: HubProcess,
) -> None:
    async with NodeClients() as js:
        ada_id = await js.open("ada", trusted_hub.ws, "team", token=token("ada"))
        await js.open("observer", trusted_hub.ws, "team", token=token("observer", "read"))
        # Ada's client claims another name and kind: the hub shows her token's subject instead.
        claimed = {"user": {"name": "Admin", "kind": "agent", "color": "#2563eb"}, "n": 1}
        await js.call("awareness", client="ada", state=claimed)
        await eventually_async(lambda: has_state(js, "observer", ada_id, n=1))
        shown = await peer_state(js, "observer", ada_id)
        assert shown is not None
        assert shown["user"] == {"name": "ada", "id": "ada", "kind": "human", "color": "#2563eb"}
        for role in ("read", "write"):
            attacker = await raw_socket(trusted_hub, "team", token(f"mallory-{role}", role))
            try:
                # Any clock, even far ahead of Ada's: a rename, then a removal of her entry.
                await attacker.send(awareness((ada_id, 2**50, '{"user":{"name":"Mallory"}}')))
                assert "client id belongs to another connection" in await refusal(attacker)
                await attacker.send(awareness((ada_id, 2**50 + 1, "null")))
                # Answered after the removal was handled: Ada is still there, as herself.
                await attacker.send(crdt_core.frame_query_awareness())
                snapshot = await presence_answer(attacker)
                assert json.loads(snapshot[ada_id])["user"]["name"] == "ada"
            finally:
                await attacker.close()
        # Ada's next change reaches the observer after anything the attackers sent.
        await js.call("awareness", client="ada", state={**claimed, "n": 2})
        await eventually_async(lambda: has_state(js, "observer", ada_id, n=2))
        shown = await peer_state(js, "observer", ada_id)
        assert shown is not None and shown["user"]["name"] == "ada"


async def test_hocuspocus_presence_is_stamped_and_owned_too(trusted_hub: HubProcess) -> None:
    async with HocuspocusClients(3) as clients:
        await clients.socket("s1", trusted_hub.ws)
        await clients.socket("s2", trusted_hub.ws)
        ada_id = await clients.open("ada", "s1", "hp-team", token=token("ada"))
        await clients.open("observer", "s2", "hp-team", token=token("observer", "read"))
        await clients.call("awareness", client="ada", state={"user": {"name": "Admin", "kind": "agent"}})

        async def stamped() -> bool:
            state = (await clients.call("peers", client="observer")).get(str(ada_id))
            return isinstance(state, dict) and state.get("user", {}).get("id") == "ada"

        await eventually_async(stamped)
        user = (await clients.call("peers", client="observer"))[str(ada_id)]["user"]
        assert user == {"name": "ada", "id": "ada", "kind": "human"}
    attacker = await raw_socket(trusted_hub, "hp-team", token("mallory"))
    try:
        await attacker.send(awareness((ada_id, 2**50, '{"user":{"name":"Mallory"}}')))
        # Ada left with her socket: the id is free again, and what is shown is Mallory's own name.
        await attacker.send(crdt_core.frame_query_awareness())
        snapshot = await presence_answer(attacker)
        assert json.loads(snapshot[ada_id])["user"]["name"] == "mallory"
    finally:
        await attacker.close()


async def has_state(js: NodeClients, client: str, client_id: int, **expected: object) -> bool:
    state = await peer_state(js, client, client_id)
    return state is not None and all(state.get(key) == value for key, value in expected.items())


async def test_presence_caps_bound_what_peers_and_joiners_receive(trusted_hub: HubProcess) -> None:
    flooder = await raw_socket(trusted_hub, "crowd", token("flooder"))
    try:
        huge = json.dumps({"user": {"name": "x"}, "blob": "x" * 10_000_000})
        await flooder.send(awareness((1, 1, huge)))
        assert "state over 16384 bytes" in await refusal(flooder)
        await flooder.send(awareness(*[(client_id, 1, "{}") for client_id in range(10, 10_010)]))
        assert "at most 4 client ids" in await refusal(flooder)
        async with NodeClients() as js:
            await js.open("joiner", trusted_hub.ws, "crowd", token=token("joiner", "read"))
            await eventually_async(lambda: peers_count(js, "joiner", 4))
            peers = await js.call("peers", client="joiner")
            assert sorted(int(cid) for cid in peers) == [10, 11, 12, 13]
            assert all(state["user"]["id"] == "flooder" for state in peers.values())
        status = httpx.get(
            f"{trusted_hub.http}/api/documents/crowd/status", headers={"authorization": f"Bearer {ADMIN}"}
        ).json()
        assert len(status["presence"]) == 4
    finally:
        await flooder.close()


async def peers_count(js: NodeClients, client: str, count: int) -> bool:
    return len(await js.call("peers", client=client)) == count


async def test_http_agent_presence_is_the_callers_own(trusted_hub: HubProcess) -> None:
    fixer = {"authorization": f"Bearer {token('agent:fixer', kind='agent')}"}
    eve = {"authorization": f"Bearer {token('eve')}"}
    url = f"{trusted_hub.http}/api/documents/desk/presence"
    async with NodeClients() as js:
        await js.open("observer", trusted_hub.ws, "desk", token=token("observer", "read"))
        body = {"agent": "fixer", "name": "Ada", "color": "#8b5cf6", "ttl": 60}
        answer = httpx.put(url, json=body, headers=fixer)
        assert answer.status_code == 200, answer.text
        client_id = answer.json()["client_id"]
        await eventually_async(lambda: has_state(js, "observer", client_id))
        shown = await peer_state(js, "observer", client_id)
        assert shown is not None
        assert shown["user"] == {
            "name": "agent:fixer",
            "id": "agent:fixer",
            "kind": "agent",
            "color": "#8b5cf6",
        }
        # Another caller using the same agent id gets its own entry and cannot remove the first.
        other = httpx.put(url, json=body, headers=eve)
        assert other.status_code == 200 and other.json()["client_id"] != client_id
        assert httpx.delete(f"{url}/fixer", headers=eve).status_code == 200  # eve's own
        assert httpx.delete(f"{url}/fixer", headers=eve).status_code == 404
        # Bad input is refused before anything changes.
        for raw in (
            '{"agent": "late", "ttl": 1e309}',
            '{"agent": "late", "ttl": 1e300}',
            '{"agent": "late", "cursor": {"index": "x"}}',
        ):
            bad = httpx.put(url, content=raw, headers={**fixer, "content-type": "application/json"})
            assert bad.status_code == 400, bad.text
            assert bad.json()["error"]["code"] in ("invalid_request", "malformed_json"), bad.text
        states = httpx.get(
            f"{trusted_hub.http}/api/documents/desk/status", headers={"authorization": f"Bearer {ADMIN}"}
        ).json()["presence"]
        agents = [json.loads(s)["user"] for s in states.values() if json.loads(s)["user"]["kind"] == "agent"]
        assert [user["id"] for user in agents] == ["agent:fixer"]
        assert await peer_state(js, "observer", client_id) is not None


def gapped_chain(count: int, size: int) -> list[bytes]:
    """A writer's updates each building on the last; without the first, all are held back."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates = []
    for index in range(count):
        before = doc.get_state()
        text += "x" if index == 0 else "y" * size
        updates.append(doc.get_update(before))
    return updates


async def test_held_back_updates_are_capped_per_connection(trusted_hub: HubProcess) -> None:
    chain = gapped_chain(12, 1_000_000)  # 11 MB held back > 8 MiB per connection
    writer = await raw_socket(trusted_hub, "gaps", token("gapper"))
    for update in chain[1:]:
        with contextlib.suppress(ConnectionClosed):
            await writer.send(crdt_core.frame_update(update))
    code, reason = await close_of(writer)
    assert code == 4412, (code, reason)
    assert "missing dependencies" in reason
    # What was held back is gone; the document still serves others.
    async with YClient(f"{trusted_hub.url('gaps')}?token={token('honest')}") as honest:
        await honest.wait_synced()
        honest.text += "ok"
        await eventually(lambda: trusted_hub_text(trusted_hub, "gaps") == "ok", what="honest edit stored")


async def test_held_back_updates_are_capped_per_document(trusted_hub: HubProcess) -> None:
    """Five writers each stay under 8 MiB held back; together they pass 32 MiB per document."""
    writers = [await raw_socket(trusted_hub, "many-gaps", token(f"gapper-{i}")) for i in range(5)]
    try:
        for index, writer in enumerate(writers):
            for update in gapped_chain(8, 1_000_000)[1:]:  # 7 MB held back each
                with contextlib.suppress(ConnectionClosed):
                    await writer.send(crdt_core.frame_update(update))
            if index < 4:  # answered only after everything before it was handled
                await writer.send(crdt_core.frame_sync_step1(b"\x00"))
                async with asyncio.timeout(20):
                    while crdt_core.parse_message(await writer.recv(decode=False)).kind is not (
                        crdt_core.MessageKind.SYNC_STEP2
                    ):
                        pass
        code, reason = await close_of(writers[-1])
        assert code == 4412, (code, reason)
        assert "per document" in reason
    finally:
        for writer in writers:
            await writer.close()


def trusted_hub_text(hub: HubProcess, document: str) -> str:
    response = httpx.get(
        f"{hub.http}/api/documents/{document}/text", headers={"authorization": f"Bearer {ADMIN}"}
    )
    text: str = response.json()["text"]
    return text


async def test_held_back_bytes_count_against_the_document_size(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, auth_secret=SECRET, max_document_bytes=200_000).start()
    try:
        writer = await raw_socket(hub, "small", token("gapper"))
        for update in gapped_chain(4, 50_000)[1:]:  # 150 KB held back, nothing integrated
            await writer.send(crdt_core.frame_update(update))
        # 60 KB more would pass the limit only if the held-back bytes were not counted.
        await writer.send(crdt_core.frame_update(big_update(60_000)))
        code, reason = await close_of(writer)
        assert code == 4413, (code, reason)
        assert "held back" in reason
    finally:
        hub.stop()


def big_update(size: int) -> bytes:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("content", type=pycrdt.Text).insert(0, "z" * size)
    return doc.get_update()


async def test_a_40_mb_document_joins_and_a_40_mb_paste_closes_nobody(trusted_hub: HubProcess) -> None:
    size = 40 * 1024 * 1024
    async with NodeClients() as js:
        await js.open("author", trusted_hub.ws, "big", token=token("author"))
        await js.open("reader", trusted_hub.ws, "big", token=token("reader", "read"))
        # One paste of 40 MiB: the other peer receives it, nobody is closed as a slow consumer.
        await js.call("insert_repeated", client="author", index=0, text="0123456789abcdef", count=size // 16)
        await js.call("wait_length", 130, client="reader", length=size, within=120_000)
        # A new client joins the 40 MiB document like a small one.
        await js.open("joiner", trusted_hub.ws, "big", token=token("joiner", "read"))
        assert await js.call("text_length", client="joiner") == size
        for client in ("author", "reader", "joiner"):
            assert await js.call("closes", client=client) == [], client
    assert "1011" not in trusted_hub.log() and "4408" not in trusted_hub.log()


def test_contradictory_limits_are_refused_at_start() -> None:
    result = collab_cli("serve", "--max-message-bytes", "100000000", "--port", "0")
    assert result.returncode == 2
    assert (
        "contradictory limits: max_message_bytes=100000000 is larger than outbox_max_bytes" in result.stderr
    )
